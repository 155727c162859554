"""Sentence-pair classification on LCQMC (do two questions ask the same?), the bert4keras way.

Each line holds two texts and a 0/1 label separated by tabs. Both texts go into one BERT
input (segment 0 and segment 1); the pooled [CLS] vector, after dropout, feeds a softmax
over the two classes. The weights with the best dev accuracy are kept and scored on test.
"""

import os

from keras.layers import Dense, Dropout

from kerasbert.backend import keras, set_gelu
from kerasbert.models import build_transformer_model
from kerasbert.optimizers import Adam
from kerasbert.snippets import DataGenerator, open, sequence_padding
from kerasbert.tokenizers import Tokenizer

set_gelu("tanh")  # the GELU approximation Google's Chinese BERT was trained with

maxlen = int(os.environ.get("MAXLEN", 128))
batch_size = int(os.environ.get("BATCH_SIZE", 64))
epochs = int(os.environ.get("EPOCHS", 20))
learning_rate = float(os.environ.get("LEARNING_RATE", 2e-5))
model_dir = os.environ.get("MODEL_DIR", "/root/kg/bert/chinese_wwm_L-12_H-768_A-12")
data_dir = os.environ.get("DATA_DIR", "datasets/lcqmc")
config_path = os.path.join(model_dir, "bert_config.json")
checkpoint_path = os.path.join(model_dir, "bert_model.ckpt")
dict_path = os.path.join(model_dir, "vocab.txt")


def load_data(filename):
    """[(text1, text2, label)] from a file of ``text1<TAB>text2<TAB>label`` lines."""
    pairs = []
    with open(filename, encoding="utf-8") as f:
        for line in f:
            text1, text2, label = line.strip().split("\t")
            pairs.append((text1, text2, int(label)))
    return pairs


train_data = load_data(os.path.join(data_dir, "train.txt"))
valid_data = load_data(os.path.join(data_dir, "dev.txt"))
test_data = load_data(os.path.join(data_dir, "test.txt"))

tokenizer = Tokenizer(dict_path, do_lower_case=True)


class data_generator(DataGenerator):
    """Batches of ([token ids, segment ids], labels) for the text pairs."""

    def __iter__(self, random=False):
        batch_token_ids, batch_segment_ids, batch_labels = [], [], []
        for is_end, (text1, text2, label) in self.sample(random):
            token_ids, segment_ids = tokenizer.encode(text1, text2, maxlen=maxlen)
            batch_token_ids.append(token_ids)
            batch_segment_ids.append(segment_ids)
            batch_labels.append([label])
            if len(batch_token_ids) == self.batch_size or is_end:
                batch_token_ids = sequence_padding(batch_token_ids)
                batch_segment_ids = sequence_padding(batch_segment_ids)
                batch_labels = sequence_padding(batch_labels)
                yield [batch_token_ids, batch_segment_ids], batch_labels
                batch_token_ids, batch_segment_ids, batch_labels = [], [], []


bert = build_transformer_model(
    config_path=config_path,
    checkpoint_path=checkpoint_path,
    with_pool=True,
    return_keras_model=False,
)

output = Dropout(rate=0.1)(bert.model.output)
output = Dense(units=2, activation="softmax", kernel_initializer=bert.initializer)(output)

model = keras.models.Model(bert.model.input, output)
model.summary()

model.compile(
    loss="sparse_categorical_crossentropy",
    optimizer=Adam(learning_rate),  # a small learning rate keeps the pretrained weights
    metrics=["accuracy"],
)

train_generator = data_generator(train_data, batch_size)
valid_generator = data_generator(valid_data, batch_size)
test_generator = data_generator(test_data, batch_size)


def evaluate(data):
    """Accuracy of the model over the batches of a generator."""
    total, right = 0.0, 0.0
    for x_true, y_true in data:
        y_pred = model.predict(x_true).argmax(axis=1)
        y_true = y_true[:, 0]
        total += len(y_true)
        right += (y_true == y_pred).sum()
    return right / total


class Evaluator(keras.callbacks.Callback):
    """Scores dev and test after each epoch and saves the best weights on dev."""

    def __init__(self):
        self.best_val_acc = 0.0

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


if __name__ == "__main__":
    evaluator = Evaluator()

    model.fit(
        train_generator.forfit(),
        steps_per_epoch=len(train_generator),
        epochs=epochs,
        callbacks=[evaluator],
    )

    model.load_weights("best_model.weights")
    print("final test acc: %.5f\n" % evaluate(test_generator))

else:
    model.load_weights("best_model.weights")
