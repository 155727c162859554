"""``from kerasbert.snippets import uniout``: accepted, and does nothing.

bert4keras scripts write ``from bert4keras.snippets import uniout`` so that Python 2
printed lists of Chinese strings readably (``['你好']`` rather than ``['\\xe4\\xbd\\xa0...']``):
on Python 2 it imported the third-party ``uniout`` package, which patches printing, and on
Python 3, where ``print`` and ``repr`` show such strings as they are, it did nothing.
kerasbert runs on Python 3 only, so this module is empty: the import works unchanged and
changes nothing.
"""
