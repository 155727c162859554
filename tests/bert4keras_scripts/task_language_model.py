"""A GPT-style language model with BERT, written the bert4keras way: text continuation.

The corpus is plain text; its sentences (ending with a full stop) are packed, in order,
into passages of at most ``maxlen - 2`` characters. BERT with the left-to-right attention
mask (``application='lm'``) learns to predict every token from the ones before it, and
``random_sample`` continues a given opening.
"""

import os
import re

import numpy as np
from keras.models import Model

from kerasbert.backend import K, keras
from kerasbert.layers import Loss
from kerasbert.models import build_transformer_model
from kerasbert.optimizers import Adam
from kerasbert.snippets import AutoRegressiveDecoder, DataGenerator, open, sequence_padding
from kerasbert.tokenizers import Tokenizer, load_vocab

maxlen = int(os.environ.get("MAXLEN", 256))
gen_maxlen = int(os.environ.get("GEN_MAXLEN", maxlen))
batch_size = int(os.environ.get("BATCH_SIZE", 16))
steps_per_epoch = int(os.environ.get("STEPS_PER_EPOCH", 1000))
epochs = int(os.environ.get("EPOCHS", 10000))
learning_rate = float(os.environ.get("LEARNING_RATE", 1e-5))
model_dir = os.environ.get("MODEL_DIR", "/root/kg/bert/chinese_roberta_wwm_ext_L-12_H-768_A-12")
data_dir = os.environ.get("DATA_DIR", "datasets/lm")
config_path = os.path.join(model_dir, "bert_config.json")
checkpoint_path = os.path.join(model_dir, "bert_model.ckpt")
dict_path = os.path.join(model_dir, "vocab.txt")

sents = []
with open(os.path.join(data_dir, "corpus.txt"), encoding="utf-8") as f:
    for line in f:
        for s in re.findall(".*?。", line.strip()):
            if len(s) <= maxlen - 2:
                sents.append(s)

token_dict, keep_tokens = load_vocab(
    dict_path=dict_path,
    simplified=True,
    startswith=["[PAD]", "[UNK]", "[CLS]", "[SEP]"],
)
tokenizer = Tokenizer(token_dict, do_lower_case=True)

# consecutive sentences packed into passages of at most maxlen - 2 characters
data, s = [], ""
for sent in sents:
    if len(s) + len(sent) > maxlen - 2:
        data.append(s)
        s = ""
    s += sent
if s:
    data.append(s)
np.random.shuffle(data)


class data_generator(DataGenerator):
    def __iter__(self, random=False):
        batch_token_ids, batch_segment_ids = [], []
        for is_end, text in self.sample(random):
            token_ids, segment_ids = tokenizer.encode(text)
            batch_token_ids.append(token_ids)
            batch_segment_ids.append(segment_ids)
            if len(batch_token_ids) == self.batch_size or is_end:
                batch_token_ids = sequence_padding(batch_token_ids)
                batch_segment_ids = sequence_padding(batch_segment_ids)
                yield [batch_token_ids, batch_segment_ids], None
                batch_token_ids, batch_segment_ids = [], []


class CrossEntropy(Loss):
    """Next-token cross-entropy; the padding does not count."""

    def compute_loss(self, inputs, mask=None):
        y_true, y_pred = inputs
        if mask[1] is None:
            y_mask = 1.0
        else:
            y_mask = K.cast(mask[1], K.floatx())[:, 1:]
        y_true = y_true[:, 1:]
        y_pred = y_pred[:, :-1]
        loss = K.sparse_categorical_crossentropy(y_true, y_pred)
        loss = K.sum(loss * y_mask) / K.sum(y_mask)
        return loss


model = build_transformer_model(
    config_path,
    checkpoint_path,
    application="lm",
    keep_tokens=keep_tokens,
)

output = CrossEntropy(1)([model.inputs[0], model.outputs[0]])

model = Model(model.inputs, output)
model.compile(optimizer=Adam(learning_rate))
model.summary()


class StoryCompletion(AutoRegressiveDecoder):
    """Continues a text by random sampling."""

    @AutoRegressiveDecoder.wraps(default_rtype="probas")
    def predict(self, inputs, output_ids, states):
        token_ids = inputs[0]
        token_ids = np.concatenate([token_ids, output_ids], 1)
        segment_ids = np.zeros_like(token_ids)
        return self.last_token(model).predict([token_ids, segment_ids])

    def generate(self, text, n=1, topp=0.95):
        token_ids, _ = tokenizer.encode(text)
        results = self.random_sample([token_ids[:-1]], n, topp=topp)  # the opening, no [SEP]
        return [text + tokenizer.decode(ids) for ids in results]


story_completion = StoryCompletion(start_id=None, end_id=tokenizer._token_end_id, maxlen=gen_maxlen)


def just_show():
    s1 = "天刚亮，码头上的渔船陆续靠了岸。"
    s2 = "那年冬天，他第一次独自坐火车去了北方。"
    for s in [s1, s2]:
        t = story_completion.generate(s)
        print("opening: %s" % s)
        print("continued: %s\n" % ("\n".join(t)))


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
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        callbacks=[evaluator],
    )

else:
    model.load_weights("./best_model.weights")
