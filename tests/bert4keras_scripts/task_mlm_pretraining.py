"""Masked-language-model pre-training (RoBERTa style), written the bert4keras way.

bert4keras's ``pretraining/`` folder does this in two steps: ``data_utils.py`` packs the
corpus's sentences into fixed-length instances, draws the masks and writes TFRecords;
``pretraining.py`` reads them with ``tf.data`` and trains under a ``tf.distribute``
strategy (GPUs or a TPU). Here one script does both with no TensorFlow: the sentences are
packed once, and a ``DataGenerator`` draws fresh masks every time it passes over an
instance (dynamic masking, each token on its own: no whole-word masking): 15% of the
tokens are chosen, of which 80% become [MASK], 10% a random token and 10% stay as they
are.

The model is BERT with the MLM head's logits (``with_mlm='linear'``); two Lambda layers
compute the masked-LM loss and accuracy over the chosen tokens, and the model is trained
to minimise the first output (the second is only reported). The optimizer is bert4keras's
LAMB (Adam with weight decay and layer adaptation, without bias correction) with a
piecewise-linear warmup and decay, and gradient accumulation over ``grad_accum_steps``
batches.
"""

import os
import re

import numpy as np
from keras.layers import Input, Lambda
from keras.models import Model

from kerasbert.backend import K, keras
from kerasbert.models import build_transformer_model
from kerasbert.optimizers import (
    Adam,
    extend_with_gradient_accumulation,
    extend_with_layer_adaptation,
    extend_with_piecewise_linear_lr,
    extend_with_weight_decay,
)
from kerasbert.snippets import DataGenerator, open
from kerasbert.tokenizers import Tokenizer

model = "roberta"

# the corpus, and where the trained weights go
model_dir = os.environ.get("MODEL_DIR", "/home/spaces_ac_cn/chinese_L-12_H-768_A-12")
data_dir = os.environ.get("DATA_DIR", "/home/spaces_ac_cn/corpus")
model_saved_path = os.environ.get("MODEL_SAVED_PATH", "bert_model.ckpt")
corpus_path = os.path.join(data_dir, "corpus.txt")

# the other settings
sequence_length = int(os.environ.get("SEQUENCE_LENGTH", 512))
batch_size = int(os.environ.get("BATCH_SIZE", 4096))
config_path = os.path.join(model_dir, "bert_config.json")
checkpoint_path = os.path.join(model_dir, "bert_model.ckpt")  # None to train from scratch
dict_path = os.path.join(model_dir, "vocab.txt")
learning_rate = float(os.environ.get("LEARNING_RATE", 0.00176))
weight_decay_rate = 0.01
num_warmup_steps = int(os.environ.get("NUM_WARMUP_STEPS", 3125))
num_train_steps = int(os.environ.get("NUM_TRAIN_STEPS", 125000))
steps_per_epoch = int(os.environ.get("STEPS_PER_EPOCH", 10000))
grad_accum_steps = int(os.environ.get("GRAD_ACCUM_STEPS", 16))  # > 1: accumulate gradients
epochs = num_train_steps * grad_accum_steps // steps_per_epoch
exclude_from_weight_decay = ["Norm", "bias"]
exclude_from_layer_adaptation = ["Norm", "bias"]
which_optimizer = "lamb"  # adam or lamb, both with weight decay
lr_schedule = {
    num_warmup_steps * grad_accum_steps: 1.0,
    num_train_steps * grad_accum_steps: 0.0,
}
mask_rate = 0.15
floatx = K.floatx()

tokenizer = Tokenizer(dict_path, do_lower_case=True)


class TrainingDataset:
    """Packs sentences into instances of ``sequence_length`` token ids:
    [CLS] sentence sentence ... [SEP] [PAD] ..., as many sentences as fit."""

    def __init__(self, tokenizer, sequence_length=512):
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length
        self.token_pad_id = tokenizer._token_pad_id
        self.token_cls_id = tokenizer._token_start_id
        self.token_sep_id = tokenizer._token_end_id

    def padding(self, sequence):
        sequence = sequence[: self.sequence_length]
        return sequence + [self.token_pad_id] * (self.sequence_length - len(sequence))

    def sentence_process(self, text):
        """The token ids of one sentence (no [CLS] / [SEP])."""
        tokens = self.tokenizer.tokenize(text)[1:-1]
        return self.tokenizer.tokens_to_ids(tokens)

    def paragraph_process(self, texts):
        """Consecutive sentences packed into instances, each ended by [SEP] and padded."""
        instances, instance = [], [self.token_cls_id]
        for text in texts:
            token_ids = self.sentence_process(text)[: self.sequence_length - 2]
            if len(instance) + len(token_ids) > self.sequence_length - 1:
                instances.append(self.padding(instance + [self.token_sep_id]))
                instance = [self.token_cls_id]
            instance.extend(token_ids)
        instances.append(self.padding(instance + [self.token_sep_id]))
        return instances


def some_texts():
    """The corpus's sentences, in order."""
    with open(corpus_path, encoding="utf-8") as f:
        for line in f:
            for text in re.findall(".*?[\n。]+", line.strip() + "\n"):
                if text.strip():
                    yield text.strip()


TD = TrainingDataset(tokenizer, sequence_length=sequence_length)
instances = TD.paragraph_process(some_texts())


class data_generator(DataGenerator):
    """RoBERTa's dynamic masking: every pass over an instance masks it anew."""

    def token_process(self, token_id):
        """80%: [MASK]; 10%: the token itself; 10%: any token of the vocabulary."""
        rand = np.random.random()
        if rand < 0.8:
            return tokenizer._token_mask_id
        if rand < 0.9:
            return token_id
        return np.random.randint(0, tokenizer._vocab_size)

    def __iter__(self, random=False):
        special = {tokenizer._token_pad_id, tokenizer._token_start_id, tokenizer._token_end_id}
        batch_masked_ids, batch_token_ids, batch_is_masked = [], [], []
        for _, token_ids in self.sample(random):
            rands = np.random.random(len(token_ids))
            masked_ids, is_masked = [], []
            for rand, token_id in zip(rands, token_ids):
                if rand < mask_rate and token_id not in special:
                    masked_ids.append(self.token_process(token_id))
                    is_masked.append(1)
                else:
                    masked_ids.append(token_id)
                    is_masked.append(0)
            batch_masked_ids.append(masked_ids)
            batch_token_ids.append(token_ids)
            batch_is_masked.append(is_masked)
            # full batches only, as the repeated and batched tf.data pipeline gives
            if len(batch_token_ids) == self.batch_size:
                batch_masked_ids = np.array(batch_masked_ids)
                x = {
                    "Input-Token": batch_masked_ids,
                    "Input-Segment": np.zeros_like(batch_masked_ids),
                    "token_ids": np.array(batch_token_ids),
                    "is_masked": np.array(batch_is_masked, dtype=floatx),
                }
                y = {
                    "mlm_loss": np.zeros((self.batch_size, 1)),
                    "mlm_acc": np.zeros((self.batch_size, 1)),
                }
                yield x, y
                batch_masked_ids, batch_token_ids, batch_is_masked = [], [], []


dataset = data_generator(instances, batch_size // grad_accum_steps).forfit()  # keras3: no tf.data


def build_transformer_model_with_mlm():
    """BERT with its MLM head, trained on the masked-LM loss."""
    bert = build_transformer_model(config_path, with_mlm="linear", return_keras_model=False)
    proba = bert.model.output

    # the extra inputs
    token_ids = Input(shape=(None,), dtype="int64", name="token_ids")  # the original ids
    is_masked = Input(shape=(None,), dtype=floatx, name="is_masked")  # 1 where chosen

    def mlm_loss(inputs):
        """The mean cross-entropy over the chosen tokens (wrapped as a layer)."""
        y_true, y_pred, mask = inputs
        loss = K.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        loss = K.sum(loss * mask) / (K.sum(mask) + K.epsilon())
        return K.expand_dims(loss, 0)  # keras3: every output of a model needs a batch axis

    def mlm_acc(inputs):
        """The accuracy over the chosen tokens (wrapped as a layer)."""
        y_true, y_pred, mask = inputs
        y_true = K.cast(y_true, floatx)
        acc = keras.metrics.sparse_categorical_accuracy(y_true, y_pred)
        acc = K.sum(acc * mask) / (K.sum(mask) + K.epsilon())
        return K.expand_dims(acc, 0)  # keras3: every output of a model needs a batch axis

    mlm_loss = Lambda(mlm_loss, name="mlm_loss")([token_ids, proba, is_masked])
    mlm_acc = Lambda(mlm_acc, name="mlm_acc")([token_ids, proba, is_masked])

    train_model = Model(bert.model.inputs + [token_ids, is_masked], [mlm_loss, mlm_acc])

    loss = {
        "mlm_loss": lambda y_true, y_pred: y_pred,
        "mlm_acc": lambda y_true, y_pred: K.stop_gradient(y_pred),
    }

    return bert, train_model, loss


def build_transformer_model_for_pretraining():
    """The training model, compiled, with the checkpoint's weights if there is one."""
    bert, train_model, loss = build_transformer_model_with_mlm()

    # the optimizer
    optimizer = extend_with_weight_decay(Adam)
    if which_optimizer == "lamb":
        optimizer = extend_with_layer_adaptation(optimizer)
    optimizer = extend_with_piecewise_linear_lr(optimizer)
    optimizer_params = {
        "learning_rate": learning_rate,
        "lr_schedule": lr_schedule,
        "weight_decay_rate": weight_decay_rate,
        "exclude_from_weight_decay": exclude_from_weight_decay,
        "exclude_from_layer_adaptation": exclude_from_layer_adaptation,
        "bias_correction": False,
    }
    if grad_accum_steps > 1:
        optimizer = extend_with_gradient_accumulation(optimizer)
        optimizer_params["grad_accum_steps"] = grad_accum_steps
    optimizer = optimizer(**optimizer_params)

    train_model.compile(loss=loss, optimizer=optimizer)

    # load the checkpoint here, after compile
    if checkpoint_path is not None:
        bert.load_weights_from_checkpoint(checkpoint_path)

    return train_model


train_model = build_transformer_model_for_pretraining()  # keras3: no tf.distribute scope
train_model.summary()


class ModelCheckpoint(keras.callbacks.Callback):
    """Saves the latest weights after every epoch."""

    def on_epoch_end(self, epoch, logs=None):
        # weights saved by model.save_weights load with model.load_weights; bert4keras's
        # bert.save_weights_as_checkpoint would write a checkpoint build_transformer_model
        # reads (kerasbert has no such method)
        self.model.save_weights(model_saved_path, overwrite=True)


checkpoint = ModelCheckpoint()
csv_logger = keras.callbacks.CSVLogger("training.log")

train_model.fit(
    dataset,
    steps_per_epoch=steps_per_epoch,
    epochs=epochs,
    callbacks=[checkpoint, csv_logger],
)
