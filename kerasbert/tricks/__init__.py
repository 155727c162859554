"""bert4keras's training tricks as one call after ``model.compile``, and integrated gradients.

bert4keras's examples define these by hand with ``K.gradients``, ``K.function`` and
``model.train_function`` (Keras 2 / TF1 only). Here each is a function: the training
tricks replace the model instance's JAX ``train_step`` with one that does the trick
statelessly, so ``model.fit`` (numpy arrays, generators, ``PyDataset``) and
``train_on_batch`` train with it, across repeated ``fit`` calls.

- :func:`adversarial_training`: FGM on the embedding table
  (``examples/task_iflytek_adversarial_training.py``).
- :func:`gradient_penalty`: loss + 0.5 * epsilon * ||d loss / d embeddings||²
  (``examples/task_iflytek_gradient_penalty.py``).
- :func:`virtual_adversarial_training`: VAT on unlabeled batches
  (``examples/task_sentiment_virtual_adversarial_training.py``).
- :func:`integrated_gradients`: per-token attributions of a prediction
  (``examples/task_sentiment_integrated_gradients.py``).

Example:

>>> from kerasbert.tricks import adversarial_training, TrickError
>>> issubclass(TrickError, ValueError)
True
"""

from kerasbert.tricks._common import find_layer
from kerasbert.tricks.adversarial import adversarial_training, virtual_adversarial_training
from kerasbert.tricks.attribution import integrated_gradients
from kerasbert.tricks.errors import TrickError
from kerasbert.tricks.penalty import gradient_penalty

__all__ = [
    "TrickError",
    "adversarial_training",
    "find_layer",
    "gradient_penalty",
    "integrated_gradients",
    "virtual_adversarial_training",
]
