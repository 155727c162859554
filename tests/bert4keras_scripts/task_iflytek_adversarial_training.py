"""Text classification with adversarial training (FGM), written the bert4keras way.

bert4keras's example trains on IFLYTEK's long texts; here a ``text<TAB>label`` file takes
their place. The [CLS] vector goes to a softmax over the classes. After ``compile``, one
call makes every training step perturb the token-embedding table along the gradient of the
loss (norm ``epsilon``) before the update, and take the perturbation off afterwards.

bert4keras defines ``adversarial_training`` in the script with ``K.gradients`` /
``K.function`` and by replacing ``model.train_function``; none of these exist on Keras 3,
and ``kerasbert.tricks`` provides the same function as a JAX train step.
"""

import json
import os

from keras.layers import Dense, Lambda

from kerasbert.backend import keras
from kerasbert.models import build_transformer_model
from kerasbert.optimizers import Adam
from kerasbert.snippets import DataGenerator, open, sequence_padding
from kerasbert.tokenizers import Tokenizer
from kerasbert.tricks import adversarial_training  # keras3: no K.gradients/K.function

num_classes = 2  # the sentiment sample (IFLYTEK has 119)
maxlen = int(os.environ.get("MAXLEN", 128))
batch_size = int(os.environ.get("BATCH_SIZE", 32))
epochs = int(os.environ.get("EPOCHS", 50))
learning_rate = float(os.environ.get("LEARNING_RATE", 2e-5))
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

tokenizer = Tokenizer(dict_path, do_lower_case=True)


class data_generator(DataGenerator):
    """Batches of [token ids, segment ids] and the label ids."""

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
                yield [batch_token_ids, batch_segment_ids], batch_labels
                batch_token_ids, batch_segment_ids, batch_labels = [], [], []


train_generator = data_generator(train_data, batch_size)
valid_generator = data_generator(valid_data, batch_size)

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

model = keras.models.Model(bert.model.input, output)
model.summary()

model.compile(
    loss="sparse_categorical_crossentropy",
    optimizer=Adam(learning_rate),
    metrics=["sparse_categorical_accuracy"],
)

# one line turns adversarial training on (after compile)
adversarial_training(model, "Embedding-Token", 0.5)


def evaluate(data):
    total, right = 0.0, 0.0
    for x_true, y_true in data:
        y_pred = model.predict(x_true).argmax(axis=1)
        y_true = y_true[:, 0]
        total += len(y_true)
        right += (y_true == y_pred).sum()
    return right / total


class Evaluator(keras.callbacks.Callback):
    """Keeps the weights that score best on the dev set."""

    def __init__(self):
        self.best_val_acc = 0.0

    def on_epoch_end(self, epoch, logs=None):
        val_acc = evaluate(valid_generator)
        if val_acc > self.best_val_acc:
            self.best_val_acc = val_acc
            model.save_weights("best_model.weights")
        print("val_acc: %.5f, best_val_acc: %.5f\n" % (val_acc, self.best_val_acc))


def predict_to_file(in_file, out_file):
    """One JSON line ``{"id", "label"}`` per text of ``in_file`` (a text per line)."""
    fw = open(out_file, "w", encoding="utf-8")
    with open(in_file, encoding="utf-8") as fr:
        for i, line in enumerate(fr):
            text = line.strip().split("\t")[0]
            token_ids, segment_ids = tokenizer.encode(text, maxlen=maxlen)
            label = model.predict([[token_ids], [segment_ids]])[0].argmax()
            fw.write(json.dumps({"id": str(i), "label": str(label)}) + "\n")
    fw.close()


if __name__ == "__main__":
    evaluator = Evaluator()

    model.fit(
        train_generator.forfit(),
        steps_per_epoch=len(train_generator),
        epochs=epochs,
        callbacks=[evaluator],
    )

else:
    model.load_weights("best_model.weights")
