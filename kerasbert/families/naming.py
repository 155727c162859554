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
    """

    canonical: str
    stored: str
    transpose: bool = False


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

    def to_canonical(self, name):
        match = self.stored_regex.fullmatch(name)
        if match is None:
            return None
        values = {k: self.slots[k].to_canonical(v) for k, v in match.groupdict().items()}
        return self.rule.canonical.format(**values)

    def from_canonical(self, name):
        match = self.canonical_regex.fullmatch(name)
        if match is None:
            return None
        values = {k: self.slots[k].to_stored(v) for k, v in match.groupdict().items()}
        return self.stored_template.format(**values)


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

    def to_canonical(self, stored_name):
        """``(canonical name, transpose)`` of a stored name, or None if no rule matches."""
        for rule in self.rules:
            canonical = rule.to_canonical(stored_name)
            if canonical is not None:
                return canonical, rule.rule.transpose
        return None

    def from_canonical(self, canonical_name):
        """``(stored name, transpose)`` of a canonical name, or None if no rule matches."""
        for rule in self.rules:
            stored = rule.from_canonical(canonical_name)
            if stored is not None:
                return stored, rule.rule.transpose
        return None

    def examples(self):
        """One canonical name per rule (slots filled with their first value), for tests."""
        names = []
        for rule in self.rules:
            values = {}
            for name in _PLACEHOLDER.findall(rule.rule.canonical):
                slot = rule.slots[name]
                values[name] = "7" if slot.values is None else next(iter(slot.values))
            names.append(rule.rule.canonical.format(**values))
        return names
