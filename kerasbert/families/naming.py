"""Two-way name tables: a checkpoint format's variable names <-> canonical names.

A family writes, for each format whose names differ from its canonical ones, one list of
:class:`Rule` pairs of templates. The same list translates both ways: a reader maps stored
names to canonical names (:meth:`NameTable.to_canonical`), a writer maps canonical names to
stored ones (:meth:`NameTable.from_canonical`), so the two directions cannot drift apart.

Templates are names with ``{slot}`` placeholders. A slot matches a part of a name and says
how that part is spelled on each side (:class:`Slot`): ``{n}`` is a number spelled the same
way on both, ``{dense}`` is ``kernel``/``bias`` in canonical names and ``weight``/``bias``
in HF torch names. A stored template may start with ``{prefix}``, the family's module
prefix (``bert.``); tables built with ``optional_prefix=True`` also read names without it
(checkpoints saved from a bare ``BertModel``).

Some formats store several canonical tensors as one (GPT-2's ``c_attn`` holds the query,
key and value projections side by side) or with extra leading axes of size 1 (OpenAI's
``conv1d`` weights are ``[1, in, out]``). A rule says so with ``split`` (a canonical slot
whose values, in order, are equal parts of the stored tensor's last axis) and ``squeeze``;
:meth:`NameTable.translate` and :meth:`NameTable.place` give the :class:`Placement` of
each part, which readers (:class:`kerasbert.checkpoints.base.Entry`) and writers
(:func:`kerasbert.checkpoints.hf_writer.hf_state_dict`) apply.

Example:

>>> table = NameTable(
...     [Rule("bert/encoder/layer_{n}/output/dense/{dense}",
...           "{prefix}encoder.layer.{n}.output.dense.{dense}", transpose=True)],
...     prefix="bert.", optional_prefix=True)
>>> table.to_canonical("encoder.layer.3.output.dense.weight")
('bert/encoder/layer_3/output/dense/kernel', True)
>>> table.from_canonical("bert/encoder/layer_3/output/dense/bias")
('bert.encoder.layer.3.output.dense.bias', True)
"""

import re
from dataclasses import dataclass, field

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Slot:
    """How one placeholder is spelled in canonical and in stored names.

    Args:
        values: canonical spelling -> stored spelling; None when both sides spell it
            alike and ``pattern`` says what it matches.
        pattern: the regex of a slot spelled alike on both sides.
        aliases: stored spellings read as a canonical one but never written (old names).

    Example:

    >>> NORM.to_stored("gamma"), NORM.to_canonical("weight"), NORM.to_canonical("gamma")
    ('weight', 'gamma', 'gamma')
    """

    values: dict = None
    pattern: str = r"\d+"
    aliases: dict = field(default_factory=dict)

    def canonical_pattern(self):
        return self.pattern if self.values is None else _alternatives(self.values)

    def stored_pattern(self):
        if self.values is None:
            return self.pattern
        return _alternatives(list(self.values.values()) + list(self.aliases))

    def to_stored(self, value):
        return value if self.values is None else self.values[value]

    def example(self):
        """A canonical value of the slot (for :meth:`NameTable.examples`)."""
        return "7" if self.values is None else next(iter(self.values))

    def to_canonical(self, value):
        if self.values is None:
            return value
        if value in self.aliases:
            return self.aliases[value]
        return {stored: canonical for canonical, stored in self.values.items()}[value]


def _alternatives(words):
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


NUMBER = Slot()
ANY = Slot(pattern=r".+")
DENSE = Slot({"kernel": "weight", "bias": "bias"})
NORM = Slot({"gamma": "weight", "beta": "bias"}, aliases={"gamma": "gamma", "beta": "beta"})
QKV = Slot({"query": "query", "key": "key", "value": "value"})
EMBEDDING = Slot({"word": "word", "position": "position", "token_type": "token_type"})
SLOTS = {"n": NUMBER, "g": NUMBER, "j": NUMBER, "dense": DENSE, "norm": NORM, "qkv": QKV,
         "embedding": EMBEDDING, "rest": ANY}  # fmt: skip


@dataclass(frozen=True)
class Rule:
    """One pair of templates: a canonical name and the stored name it corresponds to.

    Args:
        canonical: the canonical template, e.g. ``"bert/pooler/dense/{dense}"``.
        stored: the stored template, e.g. ``"{prefix}pooler.dense.{dense}"``.
        transpose: the stored 2-D tensor is the transpose of the canonical one (torch
            ``Linear`` weights are ``(out, in)``, TF kernels ``(in, out)``).
        split: the name of a slot of the canonical template, absent from the stored one:
            the stored tensor is the tensors of the slot's values (in the slot's order)
            concatenated along its last axis (GPT-2's fused ``c_attn``: query, key, value).
        squeeze: stored tensors of more than two axes have extra leading axes of size 1
            (OpenAI's ``conv1d`` weights ``[1, in, out]``): dropped on reading, restored on
            writing.

    Example:

    >>> rule = Rule("l/{qkv}/{dense}", "c_attn.{dense}", split="qkv")
    >>> [p.canonical for p in NameTable([rule]).translate("c_attn.weight")]
    ['l/query/kernel', 'l/key/kernel', 'l/value/kernel']
    """

    canonical: str
    stored: str
    transpose: bool = False
    split: str = ""
    squeeze: bool = False


@dataclass(frozen=True)
class Placement:
    """Where a canonical tensor lies in a stored one.

    Attributes:
        stored: the stored name.
        canonical: the canonical name.
        transpose: the stored (2-D) tensor is the transpose of the canonical one.
        part: ``(index, count)``: the canonical tensor is part ``index`` of ``count`` equal
            parts of the stored tensor's last axis; ``(0, 1)`` for the whole tensor.
        squeeze: the stored tensor has extra leading axes of size 1.
    """

    stored: str
    canonical: str
    transpose: bool = False
    part: tuple = (0, 1)
    squeeze: bool = False


class _CompiledRule:
    def __init__(self, rule, slots, prefix, optional_prefix):
        self.rule = rule
        self.slots = slots
        stored = rule.stored
        self.stored_template = stored.replace("{prefix}", prefix)
        read_prefix = f"(?:{re.escape(prefix)})?" if optional_prefix else re.escape(prefix)
        self.canonical_regex = self._compile(rule.canonical, "canonical", "")
        self.stored_regex = self._compile(stored, "stored", read_prefix)

    def _compile(self, template, side, prefix_regex):
        parts, position = [], 0
        for match in _PLACEHOLDER.finditer(template):
            parts.append(re.escape(template[position : match.start()]))
            name = match.group(1)
            if name == "prefix":
                parts.append(prefix_regex)
            else:
                slot = self.slots[name]
                pattern = slot.canonical_pattern() if side == "canonical" else slot.stored_pattern()
                parts.append(f"(?P<{name}>{pattern})")
            position = match.end()
        parts.append(re.escape(template[position:]))
        return re.compile("".join(parts))

    def translate(self, name):
        """The placements of a stored name's canonical tensors, or None."""
        match = self.stored_regex.fullmatch(name)
        if match is None:
            return None
        values = {k: self.slots[k].to_canonical(v) for k, v in match.groupdict().items()}
        rule = self.rule
        if not rule.split:
            return [Placement(name, rule.canonical.format(**values), rule.transpose,
                              squeeze=rule.squeeze)]  # fmt: skip
        parts = list(self.slots[rule.split].values)
        return [
            Placement(name, rule.canonical.format(**values, **{rule.split: part}),
                      rule.transpose, (index, len(parts)), rule.squeeze)
            for index, part in enumerate(parts)
        ]  # fmt: skip

    def place(self, name):
        """The placement of a canonical name in its stored tensor, or None."""
        match = self.canonical_regex.fullmatch(name)
        if match is None:
            return None
        values = {k: self.slots[k].to_stored(v) for k, v in match.groupdict().items()}
        part = (0, 1)
        if self.rule.split:
            parts = list(self.slots[self.rule.split].values)
            part = (parts.index(match.group(self.rule.split)), len(parts))
            del values[self.rule.split]
        stored = self.stored_template.format(**values)
        return Placement(stored, name, self.rule.transpose, part, self.rule.squeeze)


class NameTable:
    """A format's names for one family, both ways, from one list of rules.

    Args:
        rules: :class:`Rule` objects, tried in order (the first that matches wins).
        skipped: regexes of stored names that hold no model weight (buffers, tied copies):
            read as nothing, never written.
        prefix: what ``{prefix}`` stands for in stored templates (``"bert."``).
        optional_prefix: also read stored names that lack the prefix.
        slots: the placeholder vocabulary (default :data:`SLOTS`).

    Example:

    >>> table = NameTable([Rule("bert/pooler/dense/{dense}", "{prefix}pooler.dense.{dense}",
    ...                         transpose=True)], skipped=[r"position_ids$"], prefix="bert.")
    >>> table.to_canonical("bert.pooler.dense.weight")
    ('bert/pooler/dense/kernel', True)
    >>> table.is_skipped("bert.embeddings.position_ids"), table.to_canonical("pooler.x")
    (True, None)
    """

    def __init__(self, rules, skipped=(), prefix="", optional_prefix=False, slots=None):
        slots = SLOTS if slots is None else slots
        self.rules = [_CompiledRule(r, slots, prefix, optional_prefix) for r in rules]
        self.skipped = [re.compile(p) for p in skipped]

    def is_skipped(self, stored_name):
        """Whether a stored name holds no model weight (read as nothing)."""
        return any(p.search(stored_name) for p in self.skipped)

    def translate(self, stored_name):
        """The :class:`Placement` of every canonical tensor a stored name holds (one, or the
        parts of a ``split`` rule, in order), or None if no rule matches."""
        for rule in self.rules:
            found = rule.translate(stored_name)
            if found is not None:
                return found
        return None

    def place(self, canonical_name):
        """The :class:`Placement` of a canonical name in its stored tensor, or None."""
        for rule in self.rules:
            found = rule.place(canonical_name)
            if found is not None:
                return found
        return None

    def to_canonical(self, stored_name):
        """``(canonical name, transpose)`` of a stored name, or None if no rule matches.

        A stored tensor that holds several canonical ones (a ``split`` rule) or extra axes
        has no single answer: :meth:`translate` says where each part lies.
        """
        found = self.translate(stored_name)
        if found is None:
            return None
        if len(found) != 1 or found[0].squeeze:
            raise ValueError(f"{stored_name!r} holds {len(found)} tensor(s): use translate().")
        return found[0].canonical, found[0].transpose

    def from_canonical(self, canonical_name):
        """``(stored name, transpose)`` of a canonical name, or None if no rule matches (for
        a part of a stored tensor, the stored tensor's name: :meth:`place` says which
        part)."""
        found = self.place(canonical_name)
        return None if found is None else (found.stored, found.transpose)

    def examples(self):
        """One canonical name per rule (slots filled with their first value), for tests."""
        names = []
        for rule in self.rules:
            values = {}
            for name in _PLACEHOLDER.findall(rule.rule.canonical):
                values[name] = rule.slots[name].example()
            if rule.rule.split:  # its last part: one past the first, to exercise the split
                values[rule.rule.split] = list(rule.slots[rule.rule.split].values)[-1]
            names.append(rule.rule.canonical.format(**values))
        return names
