"""A conditional language model with BERT, written the bert4keras way: texts per label.

The sentiment data (``text<TAB>label``, 0 negative, 1 positive) are cut into sentences of at
most ``maxlen`` characters. BERT becomes a left-to-right language model
(``application='lm'``) whose layer normalizations are conditioned on the label: an
``Embedding`` of the label feeds ``layer_norm_cond`` (Conditional Layer Normalization).
Afterwards ``random_sample`` writes new texts for a chosen label.
"""

import os

import numpy as np
from keras.layers import Embedding, Input, Reshape
from keras.models import Model

from kerasbert.backend import K, keras
from kerasbert.layers import Loss
from kerasbert.models import build_transformer_model
from kerasbert.optimizers import Adam
from kerasbert.snippets import (
    AutoRegressiveDecoder,
    DataGenerator,
    open,
    sequence_padding,
    text_segmentate,
    uniout,  # noqa: F401 (prints Chinese readably on Python 2)
)
from kerasbert.tokenizers import Tokenizer, load_vocab

maxlen = int(os.environ.get("MAXLEN", 128))
gen_maxlen = int(os.environ.get("GEN_MAXLEN", maxlen))
batch_size = int(os.environ.get("BATCH_SIZE", 32))
num_classes = 2
epochs = int(os.environ.get("EPOCHS", 20))
learning_rate = float(os.environ.get("LEARNING_RATE", 1e-5))
model_dir = os.environ.get("MODEL_DIR", "/root/kg/bert/chinese_L-12_H-768_A-12")
data_dir = os.environ.get("DATA_DIR", "datasets/sentiment")
config_path = os.path.join(model_dir, "bert_config.json")
checkpoint_path = os.path.join(model_dir, "bert_model.ckpt")
dict_path = os.path.join(model_dir, "vocab.txt")

token_dict, keep_tokens = load_vocab(
    dict_path=dict_path,
    simplified=True,
    startswith=["[PAD]", "[UNK]", "[CLS]", "[SEP]"],
)
tokenizer = Tokenizer(token_dict, do_lower_case=True)


def load_data(filenames):
    """[(sentence, label)]: every text cut into sentences of at most maxlen - 2 characters."""
    D = []
    seps, strips = "\n。！？!?；;，, ", "；;，, "
    for filename in filenames:
        with open(filename, encoding="utf-8") as f:
            for line in f:
                text, label = line.strip().split("\t")
                for t in text_segmentate(text, maxlen - 2, seps, strips):
                    D.append((t, int(label)))
    return D


data = load_data([
    os.path.join(data_dir, "train.tsv"),
    os.path.join(data_dir, "dev.tsv"),
    os.path.join(data_dir, "test.tsv"),
])  # fmt: skip


class data_generator(DataGenerator):
    def __iter__(self, random=False):
        batch_token_ids, batch_segment_ids, batch_labels = [], [], []
        for is_end, (text, label) in self.sample(random):
            token_ids, segment_ids = tokenizer.encode(text, maxlen=maxlen)
            batch_token_ids.append(token_ids)
            batch_segment_ids.append(segment_ids)
            batch_labels.append([label])
            if len(batch_token_ids) == self.batch_size or is_end:
                batch_token_ids = sequence_padding(batch_token_ids)
                batch_segment_ids = sequence_padding(batch_segment_ids)
                batch_labels = sequence_padding(batch_labels)
                yield [batch_token_ids, batch_segment_ids, batch_labels], None
                batch_token_ids, batch_segment_ids, batch_labels = [], [], []


class CrossEntropy(Loss):
    """Next-token cross-entropy; the padding does not count."""

    def compute_loss(self, inputs, mask=None):
        y_true, y_pred = inputs
        if mask[1] is None:
            y_mask = 1.0
        else:
            y_mask = K.cast(mask[1], K.floatx())[:, 1:]
        y_true = y_true[:, 1:]  # the tokens to predict
        y_pred = y_pred[:, :-1]  # position t predicts token t + 1
        loss = K.sparse_categorical_crossentropy(y_true, y_pred)
        loss = K.sum(loss * y_mask) / K.sum(y_mask)
        return loss


c_in = Input(shape=(1,))
c = Embedding(num_classes, 128)(c_in)
c = Reshape((128,))(c)

model = build_transformer_model(
    config_path,
    checkpoint_path,
    application="lm",
    keep_tokens=keep_tokens,
    layer_norm_cond=c,
    additional_input_layers=c_in,
)

output = CrossEntropy(1)([model.inputs[0], model.outputs[0]])

model = Model(model.inputs, output)
model.compile(optimizer=Adam(learning_rate))
model.summary()


class RandomSentiment(AutoRegressiveDecoder):
    """Samples sentences for a label (0: negative, 1: positive)."""

    @AutoRegressiveDecoder.wraps(default_rtype="probas")
    def predict(self, inputs, output_ids, states):
        token_ids = output_ids
        segment_ids = np.zeros_like(token_ids)
        return self.last_token(model).predict([token_ids, segment_ids, inputs[0]])

    def generate(self, label, n=1, topp=0.95):
        results = self.random_sample([[label]], n, topp=topp)
        return [tokenizer.decode(ids) for ids in results]


random_sentiment = RandomSentiment(
    start_id=tokenizer._token_start_id,
    end_id=tokenizer._token_end_id,
    maxlen=gen_maxlen,
)


def just_show():
    print("positive samples:")
    print(random_sentiment.generate(1, 5, 5), "\n")
    print("negative samples:")
    print(random_sentiment.generate(0, 5, 5), "\n")


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
    train_generator = data_generator(data, batch_size)

    model.fit(
        train_generator.forfit(),
        steps_per_epoch=len(train_generator),
        epochs=epochs,
        callbacks=[evaluator],
    )

else:
    model.load_weights("./best_model.weights")
