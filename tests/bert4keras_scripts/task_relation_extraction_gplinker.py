"""Relation (triple) extraction with GPLinker, written the bert4keras way.

One JSON object per line: ``{"text": ..., "spo_list": [{"subject": ..., "predicate": ...,
"object": ...}, ...]}``; the schema file has one ``{"predicate": ...}`` object per line.
Three (efficient) GlobalPointers read BERT's token vectors, TPLinker-style: one scores every
span as a subject (head 0) or an object (head 1); per predicate, one scores the pair
(subject start, object start) and one the pair (subject end, object end). A triple is kept
where all of them score above the threshold. The loss is the sparse multi-label
cross-entropy over the labelled cells; the weights' exponential moving average is what the
evaluator scores and saves.
"""

import json
import os

import numpy as np

from kerasbert.backend import K, keras, sparse_multilabel_categorical_crossentropy
from kerasbert.layers import EfficientGlobalPointer as GlobalPointer
from kerasbert.models import build_transformer_model
from kerasbert.optimizers import Adam, extend_with_exponential_moving_average
from kerasbert.snippets import DataGenerator, open, sequence_padding, to_array
from kerasbert.tokenizers import Tokenizer

maxlen = int(os.environ.get("MAXLEN", 128))
batch_size = int(os.environ.get("BATCH_SIZE", 64))
epochs = int(os.environ.get("EPOCHS", 20))
learning_rate = float(os.environ.get("LEARNING_RATE", 1e-5))
model_dir = os.environ.get("MODEL_DIR", "/root/kg/bert/chinese_L-12_H-768_A-12")
data_dir = os.environ.get("DATA_DIR", "/root/kg/datasets")
config_path = os.path.join(model_dir, "bert_config.json")
checkpoint_path = os.path.join(model_dir, "bert_model.ckpt")
dict_path = os.path.join(model_dir, "vocab.txt")


def load_data(filename):
    """Samples ``{'text': text, 'spo_list': [(s, p, o)]}``."""
    D = []
    with open(filename, encoding="utf-8") as f:
        for line in f:
            line = json.loads(line)
            D.append(
                {
                    "text": line["text"],
                    "spo_list": [
                        (spo["subject"], spo["predicate"], spo["object"])
                        for spo in line["spo_list"]
                    ],
                }
            )
    return D


train_data = load_data(os.path.join(data_dir, "train_data.json"))
valid_data = load_data(os.path.join(data_dir, "dev_data.json"))
predicate2id, id2predicate = {}, {}

with open(os.path.join(data_dir, "all_50_schemas"), encoding="utf-8") as f:
    for line in f:
        line = json.loads(line)
        if line["predicate"] not in predicate2id:
            id2predicate[len(predicate2id)] = line["predicate"]
            predicate2id[line["predicate"]] = len(predicate2id)

tokenizer = Tokenizer(dict_path, do_lower_case=True)


def search(pattern, sequence):
    """The first index where ``pattern`` occurs in ``sequence``, or -1."""
    n = len(pattern)
    for i in range(len(sequence)):
        if sequence[i : i + n] == pattern:
            return i
    return -1


class data_generator(DataGenerator):
    """Token ids and segment ids; the labels of the three GlobalPointers as lists of cells."""

    def __iter__(self, random=False):
        batch_token_ids, batch_segment_ids = [], []
        batch_entity_labels, batch_head_labels, batch_tail_labels = [], [], []
        for is_end, d in self.sample(random):
            token_ids, segment_ids = tokenizer.encode(d["text"], maxlen=maxlen)
            # the triples as token positions {(sh, st, p, oh, ot)}
            spoes = set()
            for s, p, o in d["spo_list"]:
                s = tokenizer.encode(s)[0][1:-1]
                p = predicate2id[p]
                o = tokenizer.encode(o)[0][1:-1]
                sh = search(s, token_ids)
                oh = search(o, token_ids)
                if sh != -1 and oh != -1:
                    spoes.add((sh, sh + len(s) - 1, p, oh, oh + len(o) - 1))
            entity_labels = [set() for _ in range(2)]
            head_labels = [set() for _ in range(len(predicate2id))]
            tail_labels = [set() for _ in range(len(predicate2id))]
            for sh, st, p, oh, ot in spoes:
                entity_labels[0].add((sh, st))
                entity_labels[1].add((oh, ot))
                head_labels[p].add((sh, oh))
                tail_labels[p].add((st, ot))
            for label in entity_labels + head_labels + tail_labels:
                if not label:  # every head needs one cell: (0, 0), the [CLS] cell, if none
                    label.add((0, 0))
            entity_labels = sequence_padding([list(cells) for cells in entity_labels])
            head_labels = sequence_padding([list(cells) for cells in head_labels])
            tail_labels = sequence_padding([list(cells) for cells in tail_labels])
            batch_token_ids.append(token_ids)
            batch_segment_ids.append(segment_ids)
            batch_entity_labels.append(entity_labels)
            batch_head_labels.append(head_labels)
            batch_tail_labels.append(tail_labels)
            if len(batch_token_ids) == self.batch_size or is_end:
                batch_token_ids = sequence_padding(batch_token_ids)
                batch_segment_ids = sequence_padding(batch_segment_ids)
                batch_entity_labels = sequence_padding(batch_entity_labels, seq_dims=2)
                batch_head_labels = sequence_padding(batch_head_labels, seq_dims=2)
                batch_tail_labels = sequence_padding(batch_tail_labels, seq_dims=2)
                yield (
                    [batch_token_ids, batch_segment_ids],
                    [
                        batch_entity_labels,
                        batch_head_labels,
                        batch_tail_labels,
                    ],
                )
                batch_token_ids, batch_segment_ids = [], []
                batch_entity_labels, batch_head_labels, batch_tail_labels = [], [], []


def globalpointer_crossentropy(y_true, y_pred):
    """The sparse multi-label cross-entropy of a GlobalPointer's (heads, n, n) scores
    against its labelled cells (i, j), each flattened to i * n + j."""
    shape = K.shape(y_pred)
    y_true = y_true[..., 0] * K.cast(shape[2], K.floatx()) + y_true[..., 1]
    y_pred = K.reshape(y_pred, (shape[0], -1, K.prod(shape[2:])))
    loss = sparse_multilabel_categorical_crossentropy(y_true, y_pred, True)
    return K.mean(K.sum(loss, axis=1))


base = build_transformer_model(
    config_path=config_path,
    checkpoint_path=checkpoint_path,
    return_keras_model=False,
)

entity_output = GlobalPointer(heads=2, head_size=64)(base.model.output)
head_output = GlobalPointer(heads=len(predicate2id), head_size=64, RoPE=False, tril_mask=False)(
    base.model.output
)
tail_output = GlobalPointer(heads=len(predicate2id), head_size=64, RoPE=False, tril_mask=False)(
    base.model.output
)
outputs = [entity_output, head_output, tail_output]

AdamEMA = extend_with_exponential_moving_average(Adam, name="AdamEMA")
optimizer = AdamEMA(learning_rate=learning_rate)
model = keras.models.Model(base.model.inputs, outputs)
model.compile(loss=globalpointer_crossentropy, optimizer=optimizer)
model.summary()


def extract_spoes(text, threshold=0):
    """The triples (subject, predicate, object) the model finds in ``text``."""
    tokens = tokenizer.tokenize(text, maxlen=maxlen)
    mapping = tokenizer.rematch(text, tokens)
    token_ids, segment_ids = tokenizer.encode(text, maxlen=maxlen)
    token_ids, segment_ids = to_array([token_ids], [segment_ids])
    outputs = model.predict([token_ids, segment_ids])
    outputs = [o[0] for o in outputs]
    # subjects and objects; [CLS] and [SEP] are never part of one
    subjects, objects = set(), set()
    outputs[0][:, [0, -1]] -= np.inf
    outputs[0][:, :, [0, -1]] -= np.inf
    for head, h, t in zip(*np.where(outputs[0] > threshold)):
        if head == 0:
            subjects.add((h, t))
        else:
            objects.add((h, t))
    # the predicates linking each subject to each object, at both ends
    spoes = set()
    for sh, st in subjects:
        for oh, ot in objects:
            p1s = np.where(outputs[1][:, sh, oh] > threshold)[0]
            p2s = np.where(outputs[2][:, st, ot] > threshold)[0]
            ps = set(p1s) & set(p2s)
            for p in ps:
                spoes.add(
                    (
                        text[mapping[sh][0] : mapping[st][-1] + 1],
                        id2predicate[p],
                        text[mapping[oh][0] : mapping[ot][-1] + 1],
                    )
                )
    return list(spoes)


class SPO(tuple):
    """A triple that compares by its tokens, so that spacing and case do not matter."""

    def __init__(self, spo):
        self.spox = (
            tuple(tokenizer.tokenize(spo[0])),
            spo[1],
            tuple(tokenizer.tokenize(spo[2])),
        )

    def __hash__(self):
        return self.spox.__hash__()

    def __eq__(self, spo):
        return self.spox == spo.spox


def evaluate(data):
    """f1, precision and recall of the extracted triples; each text's result goes to
    dev_pred.json."""
    X, Y, Z = 1e-10, 1e-10, 1e-10
    f = open("dev_pred.json", "w", encoding="utf-8")
    for d in data:
        R = set([SPO(spo) for spo in extract_spoes(d["text"])])
        T = set([SPO(spo) for spo in d["spo_list"]])
        X += len(R & T)
        Y += len(R)
        Z += len(T)
        s = json.dumps(
            {
                "text": d["text"],
                "spo_list": list(T),
                "spo_list_pred": list(R),
                "new": list(R - T),
                "lack": list(T - R),
            },
            ensure_ascii=False,
            indent=4,
        )
        f.write(s + "\n")
    f.close()
    f1, precision, recall = 2 * X / (Y + Z), X / Y, X / Z
    return f1, precision, recall


class Evaluator(keras.callbacks.Callback):
    """Scores and saves the averaged weights after every epoch."""

    def __init__(self):
        self.best_val_f1 = 0.0

    def on_epoch_end(self, epoch, logs=None):
        optimizer.apply_ema_weights()
        f1, precision, recall = evaluate(valid_data)
        if f1 >= self.best_val_f1:
            self.best_val_f1 = f1
            model.save_weights("best_model.weights")
        optimizer.reset_old_weights()
        print(
            "f1: %.5f, precision: %.5f, recall: %.5f, best f1: %.5f\n"
            % (f1, precision, recall, self.best_val_f1)
        )


if __name__ == "__main__":
    train_generator = data_generator(train_data, batch_size)
    evaluator = Evaluator()

    model.fit(
        train_generator.forfit(),
        steps_per_epoch=len(train_generator),
        epochs=epochs,
        callbacks=[evaluator],
    )

else:
    model.load_weights("best_model.weights")
