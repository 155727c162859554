"""Compressing a text classifier with BERT-of-Theseus (https://arxiv.org/abs/2002.02925), the
bert4keras way, on text<TAB>label data.

Three stages: fine-tune the full BERT (the predecessor) with a classifier on top; train a
"theseus" model in which every module of the predecessor (the embeddings, then groups of
its transformer layers) is swapped at random, per batch, for the matching module of a
shallower successor built from the same checkpoint, with the predecessor and the
classifier frozen; then fine-tune the successor alone with that classifier.
"""

import os

from keras.layers import Dense, Input, Lambda, Layer
from keras.models import Model

from kerasbert.backend import K, keras
from kerasbert.models import build_transformer_model
from kerasbert.optimizers import Adam
from kerasbert.snippets import DataGenerator, open, sequence_padding
from kerasbert.tokenizers import Tokenizer

num_classes = 2
maxlen = int(os.environ.get("MAXLEN", 128))
batch_size = int(os.environ.get("BATCH_SIZE", 32))
learning_rate = float(os.environ.get("LEARNING_RATE", 2e-5))
predecessor_epochs = int(os.environ.get("PREDECESSOR_EPOCHS", 5))
theseus_epochs = int(os.environ.get("THESEUS_EPOCHS", 10))
successor_epochs = int(os.environ.get("SUCCESSOR_EPOCHS", 5))

model_dir = os.environ.get("MODEL_DIR", "/root/kg/bert/chinese_L-12_H-768_A-12")
data_dir = os.environ.get("DATA_DIR", "datasets/sentiment")
config_path = os.path.join(model_dir, "bert_config.json")
checkpoint_path = os.path.join(model_dir, "bert_model.ckpt")
dict_path = os.path.join(model_dir, "vocab.txt")


def load_data(filename):
    """[(text, label id)] from a file of ``text<TAB>label`` lines."""
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
    """Batches of ([token ids, segment ids], labels)."""

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


class BinaryRandomChoice(Layer):
    """While training, passes one of its two inputs, each with probability 1/2 per call;
    outside training, always the second."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.seed_generator = keras.random.SeedGenerator()  # keras3: JAX random needs seed state

    def compute_mask(self, inputs, mask=None):
        if mask is not None:
            return mask[1]

    def call(self, inputs):
        source, target = inputs
        mask = K.random_binomial(shape=[1], p=0.5, seed=self.seed_generator)  # keras3: seeded
        output = mask * source + (1 - mask) * target
        return K.in_train_phase(output, target)

    def compute_output_shape(self, input_shape):
        return input_shape[1]


def bert_of_theseus(predecessor, successor, classfier):
    """The model whose modules come from the predecessor or the successor at random."""
    inputs = predecessor.inputs
    # the predecessor and the classifier are trained already: freeze them
    for layer in predecessor.model.layers:
        layer.trainable = False
    classfier.trainable = False
    # the embeddings
    predecessor_outputs = predecessor.apply_embeddings(inputs)
    successor_outputs = successor.apply_embeddings(inputs)
    outputs = BinaryRandomChoice()([predecessor_outputs, successor_outputs])
    # the transformer layers, a group of the predecessor's for each of the successor's
    layers_per_module = predecessor.num_hidden_layers // successor.num_hidden_layers
    for index in range(successor.num_hidden_layers):
        predecessor_outputs = outputs
        for sub_index in range(layers_per_module):
            predecessor_outputs = predecessor.apply_main_layers(
                predecessor_outputs, layers_per_module * index + sub_index
            )
        successor_outputs = successor.apply_main_layers(outputs, index)
        outputs = BinaryRandomChoice()([predecessor_outputs, successor_outputs])
    outputs = classfier(outputs)
    model = Model(inputs, outputs)
    return model


def evaluate(data, model):
    """Accuracy of ``model`` over the batches of a generator."""
    total, right = 0.0, 0.0
    for x_true, y_true in data:
        y_pred = model.predict(x_true).argmax(axis=1)
        y_true = y_true[:, 0]
        total += len(y_true)
        right += (y_true == y_pred).sum()
    return right / total


class Evaluator(keras.callbacks.Callback):
    """Scores the model being trained on dev after each epoch and saves its best weights."""

    def __init__(self, savename):
        self.best_val_acc = 0.0
        self.savename = savename

    def on_epoch_end(self, epoch, logs=None):
        val_acc = evaluate(valid_generator, self.model)
        if val_acc > self.best_val_acc:
            self.best_val_acc = val_acc
            self.model.save_weights(self.savename)
        print("val_acc: %.5f, best_val_acc: %.5f\n" % (val_acc, self.best_val_acc))


# the full pretrained model
predecessor = build_transformer_model(
    config_path=config_path,
    checkpoint_path=checkpoint_path,
    return_keras_model=False,
    prefix="Predecessor-",
)

# the same checkpoint with one transformer layer
successor = build_transformer_model(
    config_path=config_path,
    checkpoint_path=checkpoint_path,
    return_keras_model=False,
    num_hidden_layers=1,
    prefix="Successor-",
)

# the classifier, shared by the three models
x_in = Input(shape=K.int_shape(predecessor.output)[1:])
x = Lambda(lambda x: x[:, 0])(x_in)
x = Dense(units=num_classes, activation="softmax")(x)
classfier = Model(x_in, x)

predecessor_model = Model(predecessor.inputs, classfier(predecessor.output))
predecessor_model.compile(
    loss="sparse_categorical_crossentropy",
    optimizer=Adam(learning_rate),  # a small learning rate keeps the pretrained weights
    metrics=["sparse_categorical_accuracy"],
)
predecessor_model.summary()

successor_model = Model(successor.inputs, classfier(successor.output))
successor_model.compile(
    loss="sparse_categorical_crossentropy",
    optimizer=Adam(learning_rate),
    metrics=["sparse_categorical_accuracy"],
)
successor_model.summary()

theseus_model = bert_of_theseus(predecessor, successor, classfier)
theseus_model.compile(
    loss="sparse_categorical_crossentropy",
    optimizer=Adam(learning_rate),
    metrics=["sparse_categorical_accuracy"],
)
theseus_model.summary()

if __name__ == "__main__":
    # stage 1: the predecessor
    predecessor_evaluator = Evaluator("best_predecessor.weights")
    predecessor_model.fit(
        train_generator.forfit(),
        steps_per_epoch=len(train_generator),
        epochs=predecessor_epochs,
        callbacks=[predecessor_evaluator],
    )

    # stage 2: theseus
    theseus_evaluator = Evaluator("best_theseus.weights")
    theseus_model.fit(
        train_generator.forfit(),
        steps_per_epoch=len(train_generator),
        epochs=theseus_epochs,
        callbacks=[theseus_evaluator],
    )
    theseus_model.load_weights("best_theseus.weights")

    # stage 3: the successor
    successor_evaluator = Evaluator("best_successor.weights")
    successor_model.fit(
        train_generator.forfit(),
        steps_per_epoch=len(train_generator),
        epochs=successor_epochs,
        callbacks=[successor_evaluator],
    )
