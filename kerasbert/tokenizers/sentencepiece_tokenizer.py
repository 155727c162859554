"""bert4keras's ``SpTokenizer``: a SentencePiece model (T5, mT5, ALBERT v2 ``*.model``).

The pieces come from the ``sentencepiece`` package itself (an optional dependency:
``pip install kerasbert[sentencepiece]``), so the tokens are the model's own. On top of
bert4keras's behaviour (``token_start`` / ``token_end`` added by ``tokenize`` / ``encode``,
pairs, truncation, ``token_translate``), two things make the ids equal HF transformers'
slow tokenizers:

- special pieces written in the text (the model's control and unknown pieces such as
  ``</s>``, ``<pad>``, ``[CLS]``, its user-defined ones such as ``[MASK]``, and T5's
  sentinels ``<extra_id_N>``) are split off first and kept whole, as HF does; the text
  between them is encoded piece by piece (bert4keras would spell ``</s>`` in pieces);
- ``extra_ids``: T5 / mT5 sentinels appended after the model's pieces, ``<extra_id_0>`` the
  last id (HF ``T5Tokenizer(extra_ids=100)``, bert4keras's T5 scripts add them by hand).

ALBERT's English releases preprocess the text before SentencePiece (Google's
``tokenization.preprocess_text``, HF ``AlbertTokenizer``): ``remove_space`` (strip, one
space between words), ``keep_accents=False`` (NFKD, combining marks dropped),
``do_lower_case``, and ``split_digit_comma`` (a piece such as ``▁9,`` is re-encoded as
``▁9`` + ``,``). :meth:`SpTokenizer.for_albert` and :meth:`SpTokenizer.for_t5` set each
family's options.
"""

import os
import re
import unicodedata

from kerasbert.errors import KerasBertError
from kerasbert.tokenizers.base import TokenizerBase

WORD_START = "\u2581"  # SentencePiece's "▁", the piece prefix of a word start


USER_DEFINED = 4  # sentencepiece_model.proto: SentencePiece.Type.USER_DEFINED


def _user_defined_pieces(serialized):
    """The pieces of type USER_DEFINED (``[MASK]`` in ALBERT's models): the Python API has
    no test for them, so they are read from the model proto (``ModelProto.pieces``, field 1;
    each ``SentencePiece`` has its text in field 1 and its type in field 3)."""
    from kerasbert.checkpoints.protobuf import parse_message

    found = []
    for piece in parse_message(serialized).get(1, []):
        fields = parse_message(piece)
        if fields.get(3, [1])[0] == USER_DEFINED:
            found.append(fields[1][0].decode("utf-8"))
    return found


def _load_processor(path):
    try:
        import sentencepiece
    except ImportError as error:
        raise KerasBertError(
            "SpTokenizer needs the sentencepiece package: pip install 'kerasbert[sentencepiece]'."
        ) from error
    path = os.fspath(path)
    if os.path.isdir(path):
        raise KerasBertError(
            f"{path!r} is a folder: pass the SentencePiece model file inside it (spiece.model, "
            "30k-clean.model, ...)."
        )
    if not os.path.isfile(path):
        raise KerasBertError(
            f"SentencePiece model {path!r} does not exist (or is not a file): pass the path "
            "of the release's *.model file (spiece.model, 30k-clean.model, ...)."
        )
    processor = sentencepiece.SentencePieceProcessor()
    try:
        with open(path, "rb") as f:
            serialized = f.read()
        processor.LoadFromSerializedProto(serialized)
        user_defined = _user_defined_pieces(serialized)
    except (RuntimeError, OSError, KerasBertError, UnicodeDecodeError) as error:
        raise KerasBertError(
            f"{path!r} is not a SentencePiece model ({error}); it may be truncated or corrupt: "
            "download it again."
        ) from None
    return processor, user_defined


class SpTokenizer(TokenizerBase):
    """bert4keras-compatible tokenizer over a SentencePiece model (see the module docstring).

    Args:
        sp_model_path: the ``*.model`` file.
        token_start: token put first by ``tokenize`` / ``encode`` (bert4keras's default
            ``"[CLS]"``; None for none, as T5).
        token_end: token closing each segment (``"[SEP]"``; T5: ``"</s>"``).
        token_translate: ``{token: replacement}`` applied after tokenizing.
        pre_tokenize: optional function splitting the text into words first (joined by
            spaces before SentencePiece, as bert4keras does).
        extra_ids: T5 sentinels ``<extra_id_0>`` ... appended after the model's pieces.
        do_lower_case: lower-case the text first (ALBERT's uncased releases).
        remove_space: strip the text and keep one space between words.
        keep_accents: False strips accents (NFKD, combining marks dropped).
        split_digit_comma: ALBERT's rule for pieces ending in a digit and a comma.

    Example:

    >>> import pathlib
    >>> model = pathlib.Path(__file__).parents[2] / "tests/fixtures/sentencepiece/t5.model"
    >>> tok = SpTokenizer.for_t5(model, extra_ids=100)
    >>> tok.tokenize("summarize: hi<extra_id_0>")[-2:], tok.token_to_id("<extra_id_0>")
    (['<extra_id_0>', '</s>'], 899)
    >>> tok.decode(tok.encode("The quick brown fox.")[0])
    'The quick brown fox.'
    """

    def __init__(
        self,
        sp_model_path,
        token_start="[CLS]",
        token_end="[SEP]",
        token_translate=None,
        pre_tokenize=None,
        extra_ids=0,
        do_lower_case=False,
        remove_space=False,
        keep_accents=True,
        split_digit_comma=False,
    ):
        if not isinstance(extra_ids, int) or isinstance(extra_ids, bool) or extra_ids < 0:
            raise KerasBertError(f"extra_ids must be a non-negative int, got {extra_ids!r}.")
        self.sp_model, user_defined = _load_processor(sp_model_path)
        self._piece_count = self.sp_model.get_piece_size()
        self._vocab_size = self._piece_count + extra_ids
        self._extra = {f"<extra_id_{i}>": self._vocab_size - 1 - i for i in range(extra_ids)}
        self._extra_inv = {v: k for k, v in self._extra.items()}
        self._token_start = token_start
        self._token_end = token_end
        self._token_translate = dict(token_translate or {})
        self._token_translate_inv = {v: k for k, v in self._token_translate.items()}
        self._pre_tokenize = pre_tokenize
        self._do_lower_case = do_lower_case
        self._remove_space = remove_space
        self._keep_accents = keep_accents
        self._split_digit_comma = split_digit_comma
        sp = self.sp_model
        self._token_pad = sp.id_to_piece(sp.pad_id()) if sp.pad_id() >= 0 else None
        self._token_unk = sp.id_to_piece(sp.unk_id())
        self._token_mask = "[MASK]"
        for kind in ("pad", "unk", "mask", "start", "end"):
            token = getattr(self, f"_token_{kind}")
            if token is not None and self._known(token):
                setattr(self, f"_token_{kind}_id", self.token_to_id(token))
        specials = [
            sp.id_to_piece(i)
            for i in range(self._piece_count)
            if sp.is_control(i) or sp.is_unknown(i)
        ] + user_defined + list(self._extra)
        specials = sorted(set(specials), key=len, reverse=True)
        self._special_split = re.compile("(" + "|".join(map(re.escape, specials)) + ")")

    @classmethod
    def for_t5(cls, sp_model_path, extra_ids=100, **kwargs):
        """T5 / mT5: no start token, ``</s>`` closing each segment, 100 sentinels (HF's
        ``T5Tokenizer`` defaults)."""
        kwargs.setdefault("token_start", None)
        kwargs.setdefault("token_end", "</s>")
        return cls(sp_model_path, extra_ids=extra_ids, **kwargs)

    @classmethod
    def for_albert(cls, sp_model_path, do_lower_case=True, **kwargs):
        """ALBERT v2 (Google's ``30k-clean.model``): ``[CLS] ... [SEP]`` and Google's text
        preprocessing (HF ``AlbertTokenizer``'s defaults)."""
        options = {"remove_space": True, "keep_accents": False, "split_digit_comma": True}
        options.update(kwargs)
        return cls(sp_model_path, do_lower_case=do_lower_case, **options)

    def _known(self, token):
        """Whether ``token`` has an id of its own (SentencePiece maps the others to unk)."""
        if token in self._extra or token == self._token_unk:
            return True
        return self.sp_model.piece_to_id(token) != self.sp_model.unk_id()

    # -- vocabulary ---------------------------------------------------------------------------
    @property
    def vocab_size(self):
        return self._vocab_size

    def token_to_id(self, token):
        if token in self._extra:
            return self._extra[token]
        return self.sp_model.piece_to_id(token)

    def id_to_token(self, i):
        if i in self._extra_inv:
            return self._extra_inv[i]
        if 0 <= i < self._piece_count:
            return self.sp_model.id_to_piece(i)
        return ""

    # -- tokenizing ---------------------------------------------------------------------------
    def _preprocess(self, text):
        if self._remove_space:
            text = " ".join(text.strip().split())
        text = text.replace("``", '"').replace("''", '"') if self._remove_space else text
        if not self._keep_accents:
            text = unicodedata.normalize("NFKD", text)
            text = "".join(c for c in text if not unicodedata.combining(c))
        if self._do_lower_case:
            # Character by character, as HF's tokenizers lower-case: a final capital sigma
            # becomes "σ", not the context-dependent "ς" of str.lower().
            text = "".join(c.lower() for c in text)
        return text

    def _pieces(self, text):
        pieces = self.sp_model.encode_as_pieces(self._preprocess(text))
        if not self._split_digit_comma:
            return pieces
        out = []
        for piece in pieces:
            if len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit():
                again = self.sp_model.encode_as_pieces(piece[:-1].replace(WORD_START, ""))
                if piece[0] != WORD_START and again[0][0] == WORD_START:
                    again = again[1:] if len(again[0]) == 1 else [again[0][1:]] + again[1:]
                out.extend(again + [","])
            else:
                out.append(piece)
        return out

    def _tokenize(self, text):
        if self._pre_tokenize is not None:
            text = " ".join(self._pre_tokenize(text))
        tokens = []
        for i, chunk in enumerate(self._special_split.split(text)):
            if i % 2:
                tokens.append(chunk)  # a special piece written in the text
            elif chunk:
                tokens.extend(self._pieces(chunk))
        return tokens

    # -- decoding -----------------------------------------------------------------------------
    def _is_special(self, i):
        if i in self._extra_inv:
            return True
        sp = self.sp_model
        return sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i)

    def _is_decodable(self, i):
        return 0 <= i < self._vocab_size and not self._is_special(i)

    def decode(self, ids):
        """Readable text: special pieces (control, unknown, sentinels) dropped, the rest
        joined by SentencePiece."""
        tokens = [
            self._token_translate_inv.get(t) or t
            for t in self.ids_to_tokens([int(i) for i in ids if self._is_decodable(int(i))])
        ]
        return self.sp_model.decode_pieces(tokens).strip()
