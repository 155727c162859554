"""Title generation with UniLM, written the bert4keras way.

Each line of the data is ``title<TAB>content``. BERT is built with the UniLM attention mask
(``application='unilm'``): the content (segment 0) is read in both directions, the title
(segment 1) from left to right, and the MLM head predicts every title token from the ones
before it. The vocabulary is cut down to the tokens a Chinese text needs (``keep_tokens``);
the loss only counts the title positions; titles are decoded by beam search.
"""

import os

import numpy as np
from keras.models import Model

from kerasbert.backend import K, keras
from kerasbert.layers import Loss
from kerasbert.models import build_transformer_model
from kerasbert.optimizers import Adam
from kerasbert.snippets import AutoRegressiveDecoder, DataGenerator, open, sequence_padding
from kerasbert.tokenizers import Tokenizer, load_vocab

maxlen = int(os.environ.get("MAXLEN", 256))
title_maxlen = int(os.environ.get("TITLE_MAXLEN", 32))
batch_size = int(os.environ.get("BATCH_SIZE", 16))
steps_per_epoch = int(os.environ.get("STEPS_PER_EPOCH", 1000))
epochs = int(os.environ.get("EPOCHS", 10000))
learning_rate = float(os.environ.get("LEARNING_RATE", 1e-5))
model_dir = os.environ.get("MODEL_DIR", "/root/kg/bert/chinese_wwm_L-12_H-768_A-12")
data_dir = os.environ.get("DATA_DIR", "datasets/autotitle")
config_path = os.path.join(model_dir, "bert_config.json")
checkpoint_path = os.path.join(model_dir, "bert_model.ckpt")
dict_path = os.path.join(model_dir, "vocab.txt")


def load_data(filename):
    """[(title, content)] from a file of ``title<TAB>content`` lines."""
    samples = []
    with open(filename, encoding="utf-8") as f:
        for line in f:
            title, content = line.strip().split("\t")
            samples.append((title, content))
    return samples


train_data = load_data(os.path.join(data_dir, "train.tsv"))
valid_data = load_data(os.path.join(data_dir, "dev.tsv"))

# only the tokens a Chinese text can use are kept, the vocabulary shrinks accordingly
token_dict, keep_tokens = load_vocab(
    dict_path=dict_path,
    simplified=True,
    startswith=["[PAD]", "[UNK]", "[CLS]", "[SEP]"],
)
tokenizer = Tokenizer(token_dict, do_lower_case=True)


class data_generator(DataGenerator):
    def __iter__(self, random=False):
        batch_token_ids, batch_segment_ids = [], []
        for is_end, (title, content) in self.sample(random):
            token_ids, segment_ids = tokenizer.encode(content, title, maxlen=maxlen)
            batch_token_ids.append(token_ids)
            batch_segment_ids.append(segment_ids)
            if len(batch_token_ids) == self.batch_size or is_end:
                batch_token_ids = sequence_padding(batch_token_ids)
                batch_segment_ids = sequence_padding(batch_segment_ids)
                yield [batch_token_ids, batch_segment_ids], None
                batch_token_ids, batch_segment_ids = [], []


class CrossEntropy(Loss):
    """Next-token cross-entropy; the segment ids mark the positions to predict."""

    def compute_loss(self, inputs, mask=None):
        y_true, y_mask, y_pred = inputs
        y_true = y_true[:, 1:]  # the tokens to predict
        y_mask = y_mask[:, 1:]  # segment 1: the title (and its [SEP])
        y_pred = y_pred[:, :-1]  # position t predicts token t + 1
        loss = K.sparse_categorical_crossentropy(y_true, y_pred)
        loss = K.sum(loss * y_mask) / K.sum(y_mask)
        return loss


model = build_transformer_model(
    config_path,
    checkpoint_path,
    application="unilm",
    keep_tokens=keep_tokens,
)

output = CrossEntropy(2)(model.inputs + model.outputs)

model = Model(model.inputs, output)
model.compile(optimizer=Adam(learning_rate))
model.summary()


class AutoTitle(AutoRegressiveDecoder):
    """Beam search over the UniLM model: the content, then the title so far."""

    @AutoRegressiveDecoder.wraps(default_rtype="probas")
    def predict(self, inputs, output_ids, states):
        token_ids, segment_ids = inputs
        token_ids = np.concatenate([token_ids, output_ids], 1)
        segment_ids = np.concatenate([segment_ids, np.ones_like(output_ids)], 1)
        return self.last_token(model).predict([token_ids, segment_ids])

    def generate(self, text, topk=1):
        max_c_len = maxlen - self.maxlen
        token_ids, segment_ids = tokenizer.encode(text, maxlen=max_c_len)
        output_ids = self.beam_search([token_ids, segment_ids], topk=topk)
        return tokenizer.decode(output_ids)


autotitle = AutoTitle(start_id=None, end_id=tokenizer._token_end_id, maxlen=title_maxlen)


def just_show():
    s1 = "台风过境后，沿海三个县的电力和通信已全部恢复，学校将于下周一正常开学。"
    s2 = "今年全市新增绿地两百公顷，十个街心公园陆续建成，市民步行十分钟即可到达一处公园。"
    for s in [s1, s2]:
        print("generated title:", autotitle.generate(s))
    print()


class Evaluator(keras.callbacks.Callback):
    def __init__(self):
        self.lowest = 1e10

    def on_epoch_end(self, epoch, logs=None):
        if logs["loss"] <= self.lowest:
            self.lowest = logs["loss"]
            model.save_weights("./best_model.weights")
        just_show()


if __name__ == "__main__":
    evaluator = Evaluator()
    train_generator = data_generator(train_data, batch_size)

    model.fit(
        train_generator.forfit(),
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        callbacks=[evaluator],
    )

else:
    model.load_weights("./best_model.weights")
