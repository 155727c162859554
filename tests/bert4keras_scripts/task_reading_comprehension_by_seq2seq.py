"""Reading comprehension by seq2seq with UniLM, written the bert4keras way.

The data are SQuAD-style json files (``data -> paragraphs -> context, qas``), turned into
the bert4keras example's layout: a question with its passages, each passage with the answer
it contains (or ``''``). A sample is ``[CLS] passage [SEP] question [SEP] answer [SEP]``,
the answer being segment 1; the model learns to write the answer after the question. The
decoder reads several passages at once, drops those whose first choice is to end at once
(no answer there), averages the others' votes, and in extractive mode only lets the answer
continue with an n-gram of a passage.
"""

import json
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

max_p_len = int(os.environ.get("MAX_P_LEN", 256))
max_q_len = int(os.environ.get("MAX_Q_LEN", 64))
max_a_len = int(os.environ.get("MAX_A_LEN", 32))
max_qa_len = max_q_len + max_a_len
batch_size = int(os.environ.get("BATCH_SIZE", 32))
epochs = int(os.environ.get("EPOCHS", 8))
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
    startswith=["[PAD]", "[UNK]", "[CLS]", "[SEP]"],
)
tokenizer = Tokenizer(token_dict, do_lower_case=True)


class data_generator(DataGenerator):
    """A sample is [CLS] passage [SEP] question [SEP] answer [SEP]."""

    def __iter__(self, random=False):
        batch_token_ids, batch_segment_ids = [], []
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
            qa_token_ids, qa_segment_ids = tokenizer.encode(
                question, final_answer, maxlen=max_qa_len + 1
            )
            p_token_ids, p_segment_ids = tokenizer.encode(passage, maxlen=max_p_len)
            token_ids = p_token_ids + qa_token_ids[1:]
            segment_ids = p_segment_ids + qa_segment_ids[1:]
            batch_token_ids.append(token_ids)
            batch_segment_ids.append(segment_ids)
            if len(batch_token_ids) == self.batch_size or is_end:
                batch_token_ids = sequence_padding(batch_token_ids)
                batch_segment_ids = sequence_padding(batch_segment_ids)
                yield [batch_token_ids, batch_segment_ids], None
                batch_token_ids, batch_segment_ids = [], []


class CrossEntropy(Loss):
    """Next-token cross-entropy over segment 1 (the answer)."""

    def compute_loss(self, inputs, mask=None):
        y_true, y_mask, y_pred = inputs
        y_true = y_true[:, 1:]
        y_mask = y_mask[:, 1:]
        y_pred = y_pred[:, :-1]
        loss = K.sparse_categorical_crossentropy(y_true, y_pred)
        loss = K.sum(loss * y_mask) / K.sum(y_mask)
        return loss


model = build_transformer_model(
    config_path,
    checkpoint_path,
    application="unilm",
    keep_tokens=keep_tokens,
)

output = CrossEntropy(2)(model.inputs + model.outputs)

model = Model(model.inputs, output)
model.compile(optimizer=Adam(learning_rate))
model.summary()


class ReadingComprehension(AutoRegressiveDecoder):
    """Beam search for an answer over several passages at once.

    Each element of ``inputs`` is one passage (with the question), repeated once per beam;
    a passage whose first choice is to end has no answer and is marked by a -1 in its
    first position. In ``'extractive'`` mode the answer must be a span of a passage.
    """

    def __init__(self, mode="extractive", **kwargs):
        super().__init__(**kwargs)
        self.mode = mode

    def get_ngram_set(self, x, n):
        """{(n-1)-gram: the set of tokens that follow it} over the n-grams of x."""
        result = {}
        for i in range(len(x) - n + 1):
            k = tuple(x[i : i + n])
            if k[:-1] not in result:
                result[k[:-1]] = set()
            result[k[:-1]].add(k[-1])
        return result

    @AutoRegressiveDecoder.wraps(default_rtype="probas", use_states=True)
    def predict(self, inputs, output_ids, states):
        inputs = [i for i in inputs if i[0, 0] > -1]  # passages that may hold the answer
        topk = len(inputs[0])
        all_token_ids, all_segment_ids = [], []
        for token_ids in inputs:
            token_ids = np.concatenate([token_ids, output_ids], 1)
            segment_ids = np.zeros_like(token_ids)
            if states > 0:
                segment_ids[:, -output_ids.shape[1] :] = 1
            all_token_ids.extend(token_ids)
            all_segment_ids.extend(segment_ids)
        padded_all_token_ids = sequence_padding(all_token_ids)
        padded_all_segment_ids = sequence_padding(all_segment_ids)
        probas = model.predict([padded_all_token_ids, padded_all_segment_ids])
        probas = [probas[i, len(ids) - 1] for i, ids in enumerate(all_token_ids)]
        probas = np.array(probas).reshape((len(inputs), topk, -1))
        if states == 0:
            # a passage whose most likely first token is the end has no answer
            argmax = probas[:, 0].argmax(axis=1)
            available_idxs = np.where(argmax != self.end_id)[0]
            if len(available_idxs) == 0:
                scores = np.zeros_like(probas[0])
                scores[:, self.end_id] = 1
                return scores, states + 1
            else:
                for i in np.where(argmax == self.end_id)[0]:
                    inputs[i][:, 0] = -1
                probas = probas[available_idxs]
                inputs = [i for i in inputs if i[0, 0] > -1]
        if self.mode == "extractive":
            # only the n-grams of a passage may continue the answer
            new_probas = np.zeros_like(probas)
            ngrams = {}
            for token_ids in inputs:
                token_ids = token_ids[0]
                sep_idx = np.where(token_ids == tokenizer._token_end_id)[0][0]
                p_token_ids = token_ids[1:sep_idx]
                for k, v in self.get_ngram_set(p_token_ids, states + 1).items():
                    ngrams[k] = ngrams.get(k, set()) | v
            for i, ids in enumerate(output_ids):
                available_idxs = ngrams.get(tuple(ids), set())
                available_idxs.add(tokenizer._token_end_id)
                available_idxs = list(available_idxs)
                new_probas[:, i, available_idxs] = probas[:, i, available_idxs]
            probas = new_probas
        return (probas**2).sum(0) / (probas.sum(0) + 1), states + 1  # a soft vote

    def answer(self, question, passages, topk=1):
        token_ids = []
        for passage in passages:
            passage = re.sub(" |、|；|，", ",", passage)
            p_token_ids = tokenizer.encode(passage, maxlen=max_p_len)[0]
            q_token_ids = tokenizer.encode(question, maxlen=max_q_len + 1)[0]
            token_ids.append(p_token_ids + q_token_ids[1:])
        output_ids = self.beam_search(token_ids, topk=topk, states=0)
        return tokenizer.decode(output_ids)


reader = ReadingComprehension(
    start_id=None,
    end_id=tokenizer._token_end_id,
    maxlen=max_a_len,
    mode="extractive",
)


def predict_to_file(data, filename, topk=1):
    """Writes ``id<TAB>answer`` lines, for the evaluation script."""
    with open(filename, "w", encoding="utf-8") as f:
        for d in data:
            q_text = d["question"]
            p_texts = [p["passage"] for p in d["passages"]]
            a = reader.answer(q_text, p_texts, topk)
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
