"""Chinese named entity recognition with BERT + CRF, the bert4keras way.

The data has one ``character TAG`` pair per line (BIO tags: ``B-PER``, ``I-PER``, ``O``, ...)
and a blank line between sentences. A Dense layer on the last transformer layer scores the
``2 * len(categories) + 1`` labels of every token (0 for O, then B and I of each category)
and a CRF, whose transitions learn faster than the rest, scores whole label paths. Entities
are decoded with the Viterbi algorithm and scored by entity-level F1 on dev and test.
"""

import os

import numpy as np
from keras.layers import Dense
from keras.models import Model
from tqdm import tqdm

from kerasbert.backend import K, keras
from kerasbert.layers import ConditionalRandomField
from kerasbert.models import build_transformer_model
from kerasbert.optimizers import Adam
from kerasbert.snippets import DataGenerator, ViterbiDecoder, open, sequence_padding, to_array
from kerasbert.tokenizers import Tokenizer

maxlen = int(os.environ.get("MAXLEN", 256))
epochs = int(os.environ.get("EPOCHS", 10))
batch_size = int(os.environ.get("BATCH_SIZE", 32))
bert_layers = int(os.environ.get("BERT_LAYERS", 12))
learning_rate = float(os.environ.get("LEARNING_RATE", 2e-5))  # larger for fewer layers
crf_lr_multiplier = float(os.environ.get("CRF_LR_MULTIPLIER", 1000))  # the CRF learns faster
categories = set()

model_dir = os.environ.get("MODEL_DIR", "/root/kg/bert/chinese_L-12_H-768_A-12")
data_dir = os.environ.get("DATA_DIR", "/root/ner/china-people-daily-ner-corpus")
config_path = os.path.join(model_dir, "bert_config.json")
checkpoint_path = os.path.join(model_dir, "bert_model.ckpt")
dict_path = os.path.join(model_dir, "vocab.txt")


def load_data(filename):
    """[[text, [start, end, type], ...]]: ``text[start:end + 1]`` is an entity of ``type``."""
    sentences = []
    with open(filename, encoding="utf-8") as f:
        for block in f.read().split("\n\n"):
            block = block.strip()
            if not block:
                continue
            sentence = [""]
            for i, line in enumerate(block.split("\n")):
                char, tag = line.split(" ")
                sentence[0] += char
                if tag[0] == "B":
                    sentence.append([i, i, tag[2:]])
                    categories.add(tag[2:])
                elif tag[0] == "I":
                    sentence[-1][1] = i
            sentences.append(sentence)
    return sentences


train_data = load_data(os.path.join(data_dir, "train.txt"))
valid_data = load_data(os.path.join(data_dir, "dev.txt"))
test_data = load_data(os.path.join(data_dir, "test.txt"))
categories = list(sorted(categories))

tokenizer = Tokenizer(dict_path, do_lower_case=True)


class data_generator(DataGenerator):
    """Batches of ([token ids, segment ids], label ids per token)."""

    def __iter__(self, random=False):
        batch_token_ids, batch_segment_ids, batch_labels = [], [], []
        for is_end, d in self.sample(random):
            tokens = tokenizer.tokenize(d[0], maxlen=maxlen)
            mapping = tokenizer.rematch(d[0], tokens)
            start_mapping = {j[0]: i for i, j in enumerate(mapping) if j}
            end_mapping = {j[-1]: i for i, j in enumerate(mapping) if j}
            token_ids = tokenizer.tokens_to_ids(tokens)
            segment_ids = [0] * len(token_ids)
            labels = np.zeros(len(token_ids))
            for start, end, label in d[1:]:
                if start in start_mapping and end in end_mapping:
                    start = start_mapping[start]
                    end = end_mapping[end]
                    labels[start] = categories.index(label) * 2 + 1
                    labels[start + 1 : end + 1] = categories.index(label) * 2 + 2
            batch_token_ids.append(token_ids)
            batch_segment_ids.append(segment_ids)
            batch_labels.append(labels)
            if len(batch_token_ids) == self.batch_size or is_end:
                batch_token_ids = sequence_padding(batch_token_ids)
                batch_segment_ids = sequence_padding(batch_segment_ids)
                batch_labels = sequence_padding(batch_labels)
                yield [batch_token_ids, batch_segment_ids], batch_labels
                batch_token_ids, batch_segment_ids, batch_labels = [], [], []


model = build_transformer_model(config_path, checkpoint_path)

output_layer = "Transformer-%s-FeedForward-Norm" % (bert_layers - 1)
output = model.get_layer(output_layer).output
output = Dense(len(categories) * 2 + 1)(output)
CRF = ConditionalRandomField(lr_multiplier=crf_lr_multiplier)
output = CRF(output)

model = Model(model.input, output)
model.summary()

model.compile(loss=CRF.sparse_loss, optimizer=Adam(learning_rate), metrics=[CRF.sparse_accuracy])


class NamedEntityRecognizer(ViterbiDecoder):
    """Decodes the CRF's best path into (start, end, type) character spans."""

    def recognize(self, text):
        tokens = tokenizer.tokenize(text, maxlen=512)
        mapping = tokenizer.rematch(text, tokens)
        token_ids = tokenizer.tokens_to_ids(tokens)
        segment_ids = [0] * len(token_ids)
        token_ids, segment_ids = to_array([token_ids], [segment_ids])
        nodes = model.predict([token_ids, segment_ids])[0]
        labels = self.decode(nodes)
        entities, starting = [], False
        for i, label in enumerate(labels):
            if label > 0:
                if label % 2 == 1:
                    starting = True
                    entities.append([[i], categories[(label - 1) // 2]])
                elif starting:
                    entities[-1][0].append(i)
                else:
                    starting = False
            else:
                starting = False
        return [(mapping[w[0]][0], mapping[w[-1]][-1], t) for w, t in entities]


NER = NamedEntityRecognizer(trans=K.eval(CRF.trans), starts=[0], ends=[0])


def evaluate(data):
    """Entity-level (f1, precision, recall) of the recognizer on ``data``."""
    X, Y, Z = 1e-10, 1e-10, 1e-10
    for d in tqdm(data, ncols=100):
        R = set(NER.recognize(d[0]))
        T = set([tuple(i) for i in d[1:]])
        X += len(R & T)
        Y += len(R)
        Z += len(T)
    f1, precision, recall = 2 * X / (Y + Z), X / Y, X / Z
    return f1, precision, recall


class Evaluator(keras.callbacks.Callback):
    """Refreshes the decoder's transitions, scores dev and test, keeps the best on dev."""

    def __init__(self):
        self.best_val_f1 = 0

    def on_epoch_end(self, epoch, logs=None):
        trans = K.eval(CRF.trans)
        NER.trans = trans
        print(NER.trans)
        f1, precision, recall = evaluate(valid_data)
        if f1 >= self.best_val_f1:
            self.best_val_f1 = f1
            model.save_weights("./best_model.weights")
        print(
            "valid:  f1: %.5f, precision: %.5f, recall: %.5f, best f1: %.5f\n"
            % (f1, precision, recall, self.best_val_f1)
        )
        f1, precision, recall = evaluate(test_data)
        print("test:  f1: %.5f, precision: %.5f, recall: %.5f\n" % (f1, precision, recall))


if __name__ == "__main__":
    evaluator = Evaluator()
    train_generator = data_generator(train_data, batch_size)

    model.fit(
        train_generator.forfit(),
        steps_per_epoch=len(train_generator),
        epochs=epochs,
        callbacks=[evaluator],
    )

else:
    model.load_weights("./best_model.weights")
    NER.trans = K.eval(CRF.trans)
