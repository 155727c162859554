"""Reading comprehension by MLM, written the bert4keras way.

Same SQuAD-style data as the seq2seq version. The input is ``[CLS]`` followed by
``max_a_len`` ``[MASK]`` slots, ``[SEP]``, the question and the passage; the MLM head fills
the slots with the answer (padded with 0 after its ``[SEP]``) in one pass. Decoding reads
the slots left to right, keeping only tokens that extend an n-gram of the passage, and the
passages of a question vote for the answer.
"""

import json
import os
import re

import numpy as np
from keras.layers import Lambda
from keras.models import Model

from kerasbert.backend import K, keras
from kerasbert.models import build_transformer_model
from kerasbert.optimizers import Adam
from kerasbert.snippets import DataGenerator, open, sequence_padding
from kerasbert.tokenizers import Tokenizer, load_vocab

max_p_len = int(os.environ.get("MAX_P_LEN", 256))
max_q_len = int(os.environ.get("MAX_Q_LEN", 64))
max_a_len = int(os.environ.get("MAX_A_LEN", 32))
batch_size = int(os.environ.get("BATCH_SIZE", 32))
epochs = int(os.environ.get("EPOCHS", 10))
learning_rate = float(os.environ.get("LEARNING_RATE", 1e-5))
model_dir = os.environ.get("MODEL_DIR", "/root/kg/bert/chinese_L-12_H-768_A-12")
data_dir = os.environ.get("DATA_DIR", "datasets/squad")
config_path = os.path.join(model_dir, "bert_config.json")
checkpoint_path = os.path.join(model_dir, "bert_model.ckpt")
dict_path = os.path.join(model_dir, "vocab.txt")


def load_data(filename):
    """[{'id', 'question', 'passages': [{'passage', 'answer'}]}] from a SQuAD json file."""
    D = []
    for article in json.load(open(filename, encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answer = qa["answers"][0]["text"] if qa["answers"] else ""
                D.append({
                    "id": qa["id"],
                    "question": qa["question"],
                    "passages": [{"passage": paragraph["context"], "answer": answer}],
                })  # fmt: skip
    return D


train_data = load_data(os.path.join(data_dir, "train.json"))
valid_data = load_data(os.path.join(data_dir, "dev.json"))

token_dict, keep_tokens = load_vocab(
    dict_path=dict_path,
    simplified=True,
    startswith=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
)
tokenizer = Tokenizer(token_dict, do_lower_case=True)


class data_generator(DataGenerator):
    """Input [CLS][MASK]...[MASK][SEP] question [SEP] passage [SEP]; target the answer."""

    def __iter__(self, random=False):
        batch_token_ids, batch_segment_ids, batch_a_token_ids = [], [], []
        for is_end, D in self.sample(random):
            question = D["question"]
            answers = [p["answer"] for p in D["passages"] if p["answer"]]
            passage = np.random.choice(D["passages"])["passage"]
            passage = re.sub(" |、|；|，", ",", passage)
            final_answer = ""
            for answer in answers:
                if all(a in passage[: max_p_len - 2] for a in answer.split(" ")):
                    final_answer = answer.replace(" ", ",")
                    break
            a_token_ids, _ = tokenizer.encode(final_answer, maxlen=max_a_len + 1)
            q_token_ids, _ = tokenizer.encode(question, maxlen=max_q_len + 1)
            p_token_ids, _ = tokenizer.encode(passage, maxlen=max_p_len + 1)
            token_ids = [tokenizer._token_start_id]
            token_ids += [tokenizer._token_mask_id] * max_a_len
            token_ids += [tokenizer._token_end_id]
            token_ids += q_token_ids[1:] + p_token_ids[1:]
            segment_ids = [0] * len(token_ids)
            batch_token_ids.append(token_ids)
            batch_segment_ids.append(segment_ids)
            batch_a_token_ids.append(a_token_ids[1:])
            if len(batch_token_ids) == self.batch_size or is_end:
                batch_token_ids = sequence_padding(batch_token_ids)
                batch_segment_ids = sequence_padding(batch_segment_ids)
                batch_a_token_ids = sequence_padding(batch_a_token_ids, max_a_len)
                yield [batch_token_ids, batch_segment_ids], batch_a_token_ids
                batch_token_ids, batch_segment_ids, batch_a_token_ids = [], [], []


model = build_transformer_model(
    config_path,
    checkpoint_path,
    with_mlm=True,
    keep_tokens=keep_tokens,
)
output = Lambda(lambda x: x[:, 1 : max_a_len + 1])(model.output)
model = Model(model.input, output)
model.summary()


def masked_cross_entropy(y_true, y_pred):
    """Cross-entropy of the answer slots; the padding after the answer does not count."""
    y_true = K.reshape(y_true, [K.shape(y_true)[0], -1])
    y_mask = K.cast(K.not_equal(y_true, 0), K.floatx())
    cross_entropy = K.sparse_categorical_crossentropy(y_true, y_pred)
    cross_entropy = K.sum(cross_entropy * y_mask) / K.sum(y_mask)
    return cross_entropy


model.compile(loss=masked_cross_entropy, optimizer=Adam(learning_rate))


def get_ngram_set(x, n):
    """{(n-1)-gram: the set of tokens that follow it} over the n-grams of x."""
    result = {}
    for i in range(len(x) - n + 1):
        k = tuple(x[i : i + n])
        if k[:-1] not in result:
            result[k[:-1]] = set()
        result[k[:-1]].add(k[-1])
    return result


def gen_answer(question, passages):
    """{answer: score}: an MLM fills every slot at once, so greedy decoding suffices."""
    all_p_token_ids, token_ids, segment_ids = [], [], []
    for passage in passages:
        passage = re.sub(" |、|；|，", ",", passage)
        p_token_ids, _ = tokenizer.encode(passage, maxlen=max_p_len + 1)
        q_token_ids, _ = tokenizer.encode(question, maxlen=max_q_len + 1)
        all_p_token_ids.append(p_token_ids[1:])
        token_ids.append([tokenizer._token_start_id])
        token_ids[-1] += [tokenizer._token_mask_id] * max_a_len
        token_ids[-1] += [tokenizer._token_end_id]
        token_ids[-1] += q_token_ids[1:] + p_token_ids[1:]
        segment_ids.append([0] * len(token_ids[-1]))
    token_ids = sequence_padding(token_ids)
    segment_ids = sequence_padding(segment_ids)
    probas = model.predict([token_ids, segment_ids])
    results = {}
    for t, p in zip(all_p_token_ids, probas):
        a, score = tuple(), 0.0
        for i in range(max_a_len):
            idxs = list(get_ngram_set(t, i + 1)[a])
            if tokenizer._token_end_id not in idxs:
                idxs.append(tokenizer._token_end_id)
            # zero the probability of every token that does not continue a passage n-gram
            pi = np.zeros_like(p[i])
            pi[idxs] = p[i, idxs]
            a = a + (pi.argmax(),)
            score += pi.max()
            if a[-1] == tokenizer._token_end_id:
                break
        score = score / (i + 1)
        a = tokenizer.decode(a)
        if a:
            results[a] = results.get(a, []) + [score]
    results = {k: (np.array(v) ** 2).sum() / (sum(v) + 1) for k, v in results.items()}
    return results


def max_in_dict(d):
    if d:
        return sorted(d.items(), key=lambda s: -s[1])[0][0]


def predict_to_file(data, filename):
    """Writes ``id<TAB>answer`` lines, for the evaluation script."""
    with open(filename, "w", encoding="utf-8") as f:
        for d in data:
            q_text = d["question"]
            p_texts = [p["passage"] for p in d["passages"]]
            a = gen_answer(q_text, p_texts)
            a = max_in_dict(a)
            if a:
                s = "%s\t%s\n" % (d["id"], a)
            else:
                s = "%s\t\n" % (d["id"])
            f.write(s)
            f.flush()


class Evaluator(keras.callbacks.Callback):
    def __init__(self):
        self.lowest = 1e10

    def on_epoch_end(self, epoch, logs=None):
        if logs["loss"] <= self.lowest:
            self.lowest = logs["loss"]
            model.save_weights("./best_model.weights")


if __name__ == "__main__":
    evaluator = Evaluator()
    train_generator = data_generator(train_data, batch_size)

    model.fit(
        train_generator.forfit(),
        steps_per_epoch=len(train_generator),
        epochs=epochs,
        callbacks=[evaluator],
    )

else:
    model.load_weights("./best_model.weights")
