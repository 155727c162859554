"""Sentiment classification with ALBERT, written the bert4keras way.

A text and its 0/1 label per line, separated by a tab. The [CLS] vector of ALBERT goes to a
softmax over the two classes; the learning rate warms up and decays piecewise-linearly; the
best model on the dev set is kept.
"""

import os

from keras.layers import Dense, Lambda

from kerasbert.backend import keras, set_gelu
from kerasbert.models import build_transformer_model
from kerasbert.optimizers import Adam, extend_with_piecewise_linear_lr
from kerasbert.snippets import DataGenerator, open, sequence_padding
from kerasbert.tokenizers import Tokenizer

set_gelu("tanh")  # brightmart's albert_zh was trained with the tanh GELU

num_classes = 2
maxlen = 64
batch_size = int(os.environ.get("BATCH_SIZE", 16))
epochs = int(os.environ.get("EPOCHS", 10))
learning_rate = float(os.environ.get("LEARNING_RATE", 1e-4))
model_dir = os.environ.get("MODEL_DIR", "/root/kg/bert/albert_small_zh_google")
data_dir = os.environ.get("DATA_DIR", "datasets/sentiment")
config_path = os.path.join(model_dir, "albert_config.json")
checkpoint_path = os.path.join(model_dir, "albert_model.ckpt")
dict_path = os.path.join(model_dir, "vocab.txt")


def load_data(filename):
    """[(text, label)] from a file of ``text<TAB>label`` lines."""
    samples = []
    with open(filename, encoding="utf-8") as f:
        for line in f:
            text, label = line.strip().split("\t")
            samples.append((text, int(label)))
    return samples


train_data = load_data(os.path.join(data_dir, "train.tsv"))
valid_data = load_data(os.path.join(data_dir, "dev.tsv"))
tokenizer = Tokenizer(dict_path, do_lower_case=True)


class data_generator(DataGenerator):
    def __iter__(self, random=False):
        batch_token_ids, batch_segment_ids, batch_labels = [], [], []
        for is_end, (text, label) in self.sample(random):
            token_ids, segment_ids = tokenizer.encode(text, maxlen=maxlen)
            batch_token_ids.append(token_ids)
            batch_segment_ids.append(segment_ids)
            batch_labels.append([label])
            if len(batch_token_ids) == self.batch_size or is_end:
                yield [sequence_padding(batch_token_ids), sequence_padding(batch_segment_ids)], \
                    sequence_padding(batch_labels)
                batch_token_ids, batch_segment_ids, batch_labels = [], [], []


albert = build_transformer_model(
    config_path=config_path,
    checkpoint_path=checkpoint_path,
    model="albert",
    return_keras_model=False,
)
cls_vector = Lambda(lambda x: x[:, 0], name="CLS-token")(albert.model.output)
probabilities = Dense(
    num_classes, activation="softmax", kernel_initializer=albert.initializer
)(cls_vector)
model = keras.models.Model(albert.model.input, probabilities)
model.summary()

AdamLR = extend_with_piecewise_linear_lr(Adam, name="AdamLR")
model.compile(
    loss="sparse_categorical_crossentropy",
    optimizer=AdamLR(learning_rate=learning_rate, lr_schedule={20: 1, 200: 0.1}),
    metrics=["accuracy"],
)
train_generator = data_generator(train_data, batch_size)
valid_generator = data_generator(valid_data, batch_size)


def evaluate(data):
    right, total = 0.0, 0.0
    for x_true, y_true in data:
        y_pred = model.predict(x_true).argmax(axis=1)
        right += (y_true[:, 0] == y_pred).sum()
        total += len(y_pred)
    return right / total


class Evaluator(keras.callbacks.Callback):
    def __init__(self):
        self.best_val_acc = 0.0

    def on_epoch_end(self, epoch, logs=None):
        val_acc = evaluate(valid_generator)
        if val_acc >= self.best_val_acc:
            self.best_val_acc = val_acc
            model.save_weights("best_model.weights")
        print("val_acc: %.5f, best_val_acc: %.5f" % (val_acc, self.best_val_acc))


if __name__ == "__main__":
    evaluator = Evaluator()
    model.fit(
        train_generator.forfit(),
        steps_per_epoch=len(train_generator),
        epochs=epochs,
        callbacks=[evaluator],
    )
    model.load_weights("best_model.weights")
    print("final val acc: %.5f" % evaluate(valid_generator))
