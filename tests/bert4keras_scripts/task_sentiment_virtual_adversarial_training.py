"""Semi-supervised sentiment classification by virtual adversarial training (VAT),
written the bert4keras way.

Two models share every layer: ``model`` learns from the labeled texts (one-hot labels, KL
divergence), and ``model_vat`` learns from unlabeled texts to keep its predictions when the
token-embedding table is moved, in the direction that changes them most, by a step of norm
``epsilon``. ``model.fit`` trains the first; after each of its batches the evaluator feeds
``model_vat`` one unlabeled batch. bert4keras's example keeps 1% of its training set's
labels; here the whole sample training set is labeled and the dev set's texts, without
their labels, are the unlabeled data.

bert4keras defines ``virtual_adversarial_training`` in the script with ``K.gradients`` /
``K.function`` and by replacing ``model.train_function``; none of these exist on Keras 3,
and ``kerasbert.tricks`` provides the same function as a JAX train step. (On JAX, ``fit``
keeps the weights it trains off the model's variables until the epoch ends;
``kerasbert.backend`` writes them back before ``model_vat.train_on_batch`` runs, so the
evaluator stays as bert4keras wrote it.)
"""

import os

from keras.layers import Dense, Lambda
from keras.utils import to_categorical

from kerasbert.backend import keras
from kerasbert.models import build_transformer_model
from kerasbert.optimizers import Adam
from kerasbert.snippets import DataGenerator, open, sequence_padding
from kerasbert.tokenizers import Tokenizer
from kerasbert.tricks import virtual_adversarial_training  # keras3: no K.gradients/K.function

num_classes = 2
maxlen = int(os.environ.get("MAXLEN", 128))
batch_size = int(os.environ.get("BATCH_SIZE", 32))
steps_per_epoch = int(os.environ.get("STEPS_PER_EPOCH", 30))
epochs = int(os.environ.get("EPOCHS", 100))
learning_rate = float(os.environ.get("LEARNING_RATE", 2e-5))
vat_learning_rate = float(os.environ.get("VAT_LEARNING_RATE", learning_rate / 2))
use_vat = True  # compare with False
model_dir = os.environ.get("MODEL_DIR", "/root/kg/bert/chinese_L-12_H-768_A-12")
data_dir = os.environ.get("DATA_DIR", "datasets/sentiment")
config_path = os.path.join(model_dir, "bert_config.json")
checkpoint_path = os.path.join(model_dir, "bert_model.ckpt")
dict_path = os.path.join(model_dir, "vocab.txt")


def load_data(filename):
    """Samples (text, label id), one ``text<TAB>label`` per line."""
    D = []
    with open(filename, encoding="utf-8") as f:
        for line in f:
            text, label = line.strip().split("\t")
            D.append((text, int(label)))
    return D


train_data = load_data(os.path.join(data_dir, "train.tsv"))
valid_data = load_data(os.path.join(data_dir, "dev.tsv"))
test_data = load_data(os.path.join(data_dir, "test.tsv"))

# the unlabeled texts: their labels are thrown away (a dummy 0 takes their place)
unlabeled_data = [(t, 0) for t, _ in valid_data]

tokenizer = Tokenizer(dict_path, do_lower_case=True)


class data_generator(DataGenerator):
    """Batches of [token ids, segment ids] and one-hot labels."""

    def __iter__(self, random=False):
        batch_token_ids, batch_segment_ids, batch_labels = [], [], []
        for is_end, (text, label) in self.sample(random):
            token_ids, segment_ids = tokenizer.encode(text, maxlen=maxlen)
            batch_token_ids.append(token_ids)
            batch_segment_ids.append(segment_ids)
            batch_labels.append(label)
            if len(batch_token_ids) == self.batch_size or is_end:
                batch_token_ids = sequence_padding(batch_token_ids)
                batch_segment_ids = sequence_padding(batch_segment_ids)
                batch_labels = to_categorical(batch_labels, num_classes)
                yield [batch_token_ids, batch_segment_ids], batch_labels
                batch_token_ids, batch_segment_ids, batch_labels = [], [], []


train_generator = data_generator(train_data, batch_size)
valid_generator = data_generator(valid_data, batch_size)
test_generator = data_generator(test_data, batch_size)

bert = build_transformer_model(
    config_path=config_path,
    checkpoint_path=checkpoint_path,
    return_keras_model=False,
)

output = Lambda(lambda x: x[:, 0])(bert.model.output)
output = Dense(
    units=num_classes,
    activation="softmax",
    kernel_initializer=bert.initializer,
)(output)

# the model trained on the labeled data
model = keras.models.Model(bert.model.input, output)
model.summary()

model.compile(
    loss="kld",
    optimizer=Adam(learning_rate),
    metrics=["categorical_accuracy"],
)

# the model trained by VAT on the unlabeled data (the same layers)
model_vat = keras.models.Model(bert.model.input, output)
model_vat.compile(
    loss="kld",
    optimizer=Adam(vat_learning_rate),
    metrics=["categorical_accuracy"],
)

# one line turns VAT on for model_vat (after compile)
virtual_adversarial_training(model_vat, "Embedding-Token")


def evaluate(data):
    total, right = 0.0, 0.0
    for x_true, y_true in data:
        y_pred = model.predict(x_true).argmax(axis=1)
        y_true = y_true.argmax(axis=1)
        total += len(y_true)
        right += (y_true == y_pred).sum()
    return right / total


class Evaluator(keras.callbacks.Callback):
    """Keeps the best weights on the dev set; trains model_vat after every batch."""

    def __init__(self):
        self.best_val_acc = 0.0
        self.data = data_generator(unlabeled_data, batch_size).forfit()

    def on_epoch_end(self, epoch, logs=None):
        val_acc = evaluate(valid_generator)
        if val_acc > self.best_val_acc:
            self.best_val_acc = val_acc
            model.save_weights("best_model.weights")
        test_acc = evaluate(test_generator)
        print(
            "val_acc: %.5f, best_val_acc: %.5f, test_acc: %.5f\n"
            % (val_acc, self.best_val_acc, test_acc)
        )

    def on_batch_end(self, batch, logs=None):
        if use_vat:
            dx, dy = next(self.data)
            model_vat.train_on_batch(dx, dy)


if __name__ == "__main__":
    evaluator = Evaluator()

    model.fit(
        train_generator.forfit(),
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        callbacks=[evaluator],
    )

else:
    model.load_weights("best_model.weights")
