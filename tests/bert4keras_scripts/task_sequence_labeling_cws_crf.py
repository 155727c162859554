"""Chinese word segmentation with BERT + CRF, the bert4keras way.

One segmented sentence per line, words separated by spaces. Every token gets one of four
labels (0: a one-character word, 1: the first, 2: a middle, 3: the last character of a
longer word); a Dense layer on the last transformer layer scores them and a CRF scores the
label paths. The Viterbi path cuts the text back into words.
"""

import os
import re

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
num_labels = 4
batch_size = int(os.environ.get("BATCH_SIZE", 32))
bert_layers = int(os.environ.get("BERT_LAYERS", 12))
learning_rate = float(os.environ.get("LEARNING_RATE", 1e-5))  # larger for fewer layers
crf_lr_multiplier = float(os.environ.get("CRF_LR_MULTIPLIER", 1))  # raise if the CRF lags

model_dir = os.environ.get("MODEL_DIR", "/root/kg/bert/chinese_L-12_H-768_A-12")
data_dir = os.environ.get("DATA_DIR", "datasets/cws")
config_path = os.path.join(model_dir, "bert_config.json")
checkpoint_path = os.path.join(model_dir, "bert_model.ckpt")
dict_path = os.path.join(model_dir, "vocab.txt")


def load_data(filename):
    """[[word1, word2, ...]] from a file of space-separated sentences."""
    sentences = []
    with open(filename, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                sentences.append(re.split(" +", line.strip()))
    return sentences


train_data = load_data(os.path.join(data_dir, "train.txt"))
valid_data = load_data(os.path.join(data_dir, "dev.txt"))

tokenizer = Tokenizer(dict_path, do_lower_case=True)


class data_generator(DataGenerator):
    """Batches of ([token ids, segment ids], BMES labels per token)."""

    def __iter__(self, random=False):
        batch_token_ids, batch_segment_ids, batch_labels = [], [], []
        for is_end, item in self.sample(random):
            token_ids, labels = [tokenizer._token_start_id], [0]
            for w in item:
                w_token_ids = tokenizer.encode(w)[0][1:-1]
                if len(token_ids) + len(w_token_ids) < maxlen:
                    token_ids += w_token_ids
                    if len(w_token_ids) == 1:
                        labels += [0]
                    else:
                        labels += [1] + [2] * (len(w_token_ids) - 2) + [3]
                else:
                    break
            token_ids += [tokenizer._token_end_id]
            labels += [0]
            segment_ids = [0] * len(token_ids)
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
output = Dense(num_labels)(output)
CRF = ConditionalRandomField(lr_multiplier=crf_lr_multiplier)
output = CRF(output)

model = Model(model.input, output)
model.summary()

model.compile(loss=CRF.sparse_loss, optimizer=Adam(learning_rate), metrics=[CRF.sparse_accuracy])


class WordSegmenter(ViterbiDecoder):
    """Cuts a text into words along the CRF's best label path."""

    def tokenize(self, text):
        tokens = tokenizer.tokenize(text)
        while len(tokens) > 512:
            tokens.pop(-2)
        mapping = tokenizer.rematch(text, tokens)
        token_ids = tokenizer.tokens_to_ids(tokens)
        segment_ids = [0] * len(token_ids)
        token_ids, segment_ids = to_array([token_ids], [segment_ids])
        nodes = model.predict([token_ids, segment_ids])[0]
        labels = self.decode(nodes)
        words = []
        for i, label in enumerate(labels[1:-1]):
            if label < 2 or len(words) == 0:
                words.append([i + 1])
            else:
                words[-1].append(i + 1)
        return [text[mapping[w[0]][0] : mapping[w[-1]][-1] + 1] for w in words]


segmenter = WordSegmenter(trans=K.eval(CRF.trans), starts=[0], ends=[0])


def simple_evaluate(data):
    """The share of gold words the segmenter finds (a quick proxy for the official F1)."""
    total, right = 0.0, 0.0
    for w_true in tqdm(data):
        w_pred = segmenter.tokenize("".join(w_true))
        w_pred = set(w_pred)
        w_true = set(w_true)
        total += len(w_true)
        right += len(w_true & w_pred)
    return right / total


def predict_to_file(in_file, out_file):
    """Segment every line of ``in_file`` into ``out_file`` (for the SIGHAN scorer)."""
    fw = open(out_file, "w", encoding="utf-8")
    with open(in_file, encoding="utf-8") as fr:
        for line in tqdm(fr):
            line = line.strip()
            if line:
                line = " ".join(segmenter.tokenize(line))
            fw.write(line + "\n")
    fw.close()


class Evaluator(keras.callbacks.Callback):
    """Refreshes the segmenter's transitions, scores dev, keeps the best weights."""

    def __init__(self):
        self.best_val_acc = 0

    def on_epoch_end(self, epoch, logs=None):
        trans = K.eval(CRF.trans)
        segmenter.trans = trans
        print(segmenter.trans)
        acc = simple_evaluate(valid_data)
        if acc >= self.best_val_acc:
            self.best_val_acc = acc
            model.save_weights("./best_model.weights")
        print("acc: %.5f, best acc: %.5f" % (acc, self.best_val_acc))


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
    segmenter.trans = K.eval(CRF.trans)
