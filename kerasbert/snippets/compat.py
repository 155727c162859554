"""bert4keras's small general helpers, kept so that ported scripts import unchanged.

kerasbert itself does not use them: :func:`to_array` (arguments to numpy arrays),
:func:`is_string`, :func:`is_one_of` (membership by identity), and the class decorators
:func:`insert_arguments` (extra keyword arguments stored as attributes) and
:func:`delete_arguments` (keyword arguments refused).
"""

import functools

import numpy as np

from kerasbert.errors import SnippetError


def to_array(*args):
    """Turn each argument into a numpy array (bert4keras's ``to_array``).

    Example:

    >>> to_array([1, 2])[0].dtype.kind
    'i'
    """
    results = [np.array(a) for a in args]
    return results[0] if len(args) == 1 else results


def is_string(value):
    """Whether ``value`` is a str."""
    return isinstance(value, str)


def is_one_of(x, ys):
    """Whether ``x`` is one of ``ys`` by identity (``any(x is y for y in ys)``).

    ``x in ys`` compares with ``==``, which fails for objects whose ``==`` is elementwise
    (numpy arrays, tensors and Keras variables: "the truth value of an array is
    ambiguous"); this compares identities only, as bert4keras's ``is_one_of`` does.

    Args:
        x: the object looked for.
        ys: an iterable of objects.

    Example:

    >>> a, b = np.zeros(3), np.zeros(3)
    >>> is_one_of(a, [b, a]), is_one_of(np.zeros(3), [b, a])
    (True, False)
    """
    return any(x is y for y in ys)


def insert_arguments(**arguments):
    """Class decorator adding keyword arguments (with defaults) stored as attributes.

    Example:

    >>> @insert_arguments(size=3)
    ... class Box:
    ...     def __init__(self, **kwargs):
    ...         pass
    >>> Box(size=5).size, Box().size
    (5, 3)
    """

    def decorator(cls):
        init = cls.__init__

        @functools.wraps(init)
        def new_init(self, *args, **kwargs):
            for key, default in arguments.items():
                setattr(self, key, kwargs.pop(key, default))
            init(self, *args, **kwargs)

        cls.__init__ = new_init
        return cls

    return decorator


def delete_arguments(*names):
    """Class decorator refusing the named keyword arguments with a clear error."""

    def decorator(cls):
        init = cls.__init__

        @functools.wraps(init)
        def new_init(self, *args, **kwargs):
            for name in names:
                if name in kwargs:
                    raise SnippetError(f"{cls.__name__} does not take the argument {name!r}.")
            init(self, *args, **kwargs)

        cls.__init__ = new_init
        return cls

    return decorator
