"""``kerasbert serve``'s options, under bert-as-service's names (``-port``, ``-max_seq_len``,
``-pooling_strategy``, ...), and their checks.

bert-as-service spells options with one dash and underscores; so does ``kerasbert serve``,
so that a ``bert-serving-start`` command line works after renaming the program (its
``-model_dir DIR`` is also accepted in place of the positional model). Options of the
original that mean nothing here (``-tuned_model_dir``, ``-ckpt_name``, ``-config_name``,
``-graph_tmp_dir``, ``-gpu_memory_fraction``, ``-xla``, ``-prefetch_size``, ``-verbose``,
``-priority_batch_size``, ``-device_map``, ``-cpu``, ``-cors``, ``-http_max_connect``) are
accepted and ignored with a note, so such a command line still starts.
"""

import argparse
from dataclasses import dataclass, field

from kerasbert.errors import ServingError
from kerasbert.serving.engine import STRATEGIES

IGNORED_WITH_VALUE = ("tuned_model_dir", "ckpt_name", "config_name", "graph_tmp_dir",
                      "gpu_memory_fraction", "prefetch_size", "priority_batch_size",
                      "device_map", "cors", "http_max_connect")  # fmt: skip
IGNORED_FLAGS = ("xla", "verbose", "cpu", "fixed_embed_length", "no_position_embeddings")


@dataclass
class ServeOptions:
    """Everything a :class:`~kerasbert.serving.server.BertServer` is started with (the
    command line's options; see ``kerasbert serve --help``)."""

    model: str
    port: int = 5555
    port_out: int = 5556
    http_port: int = None
    host: str = "*"
    max_seq_len: int = 25
    pooling_strategy: str = "REDUCE_MEAN"
    pooling_layer: list = field(default_factory=lambda: [-2])
    max_batch_size: int = 256
    num_worker: int = 1
    show_tokens_to_client: bool = False
    cased_tokenization: bool = None
    mask_cls_sep: bool = False
    fp16: bool = False
    max_request_texts: int = 10000
    warm_up: bool = True
    merge_requests: bool = True
    ignored: list = field(default_factory=list)

    def check(self):
        """Raise a ServingError (naming the option) for a value that cannot work."""
        if isinstance(self.pooling_layer, int):
            self.pooling_layer = [self.pooling_layer]
        for name in ("port", "port_out") + (("http_port",) if self.http_port is not None else ()):
            value = getattr(self, name)
            if not (isinstance(value, int) and 0 < value < 65536):
                raise ServingError(f"-{name} must be a TCP port (1-65535), got {value!r}")
        ports = [p for p in (self.port, self.port_out, self.http_port) if p is not None]
        if len(set(ports)) != len(ports):
            raise ServingError("-port, -port_out and -http_port must be different ports")
        if self.max_seq_len is not None and not (isinstance(self.max_seq_len, int)
                                                 and self.max_seq_len > 3):  # fmt: skip
            raise ServingError(f"-max_seq_len must be an int above 3 or NONE, got "
                               f"{self.max_seq_len!r}")  # fmt: skip
        if self.pooling_strategy not in STRATEGIES:
            raise ServingError(f"-pooling_strategy must be one of {', '.join(STRATEGIES)}, "
                               f"got {self.pooling_strategy!r}")  # fmt: skip
        for name in ("max_batch_size", "num_worker", "max_request_texts"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value > 0):
                raise ServingError(f"-{name} must be a positive int, got {value!r}")
        return self


def _max_seq_len(text):
    if text.upper() == "NONE":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"an int or NONE, not {text!r}") from None


def add_arguments(parser):
    """Add ``kerasbert serve``'s arguments to an argparse parser."""
    parser.add_argument("model", nargs="?", metavar="MODEL_DIR_OR_NAME",
                        help="a model folder or a name from `kerasbert list`")  # fmt: skip
    parser.add_argument("-model_dir", dest="model_dir", help="the same as MODEL_DIR_OR_NAME")
    parser.add_argument("-port", "-port_in", "-port_data", type=int, default=5555,
                        help="port the clients send requests to (their PUSH)")  # fmt: skip
    parser.add_argument("-port_out", "-port_result", type=int, default=5556,
                        help="port the clients read replies from (their SUB)")  # fmt: skip
    parser.add_argument("-http_port", type=int, help="also serve HTTP (POST /encode, "
                        "GET /status/server) on this port")  # fmt: skip
    parser.add_argument("-host", default="*", help="the interface to bind ('*': all, as "
                        "bert-as-service; 127.0.0.1: this machine only)")  # fmt: skip
    parser.add_argument("-max_seq_len", type=_max_seq_len, default=25,
                        help="tokens per text, [CLS] and [SEP] included, longer texts are "
                        "truncated; NONE: each request's longest text, up to the model's "
                        "limit")  # fmt: skip
    parser.add_argument("-pooling_strategy", type=str.upper, default="REDUCE_MEAN",
                        help=f"one of {', '.join(STRATEGIES)} (NONE: token vectors)")
    parser.add_argument("-pooling_layer", type=int, nargs="+", default=[-2],
                        help="the block(s) pooled: -1 the last, -2 the one before; several "
                        "are concatenated")  # fmt: skip
    parser.add_argument("-max_batch_size", type=int, default=256,
                        help="the most texts in one model batch (requests from all clients "
                        "are merged into batches up to this size)")  # fmt: skip
    parser.add_argument("-num_worker", type=int, default=1,
                        help="model replicas, one per device (JAX devices; on a CPU, one)")
    parser.add_argument("-show_tokens_to_client", action="store_true",
                        help="send each text's tokens with its vectors")  # fmt: skip
    parser.add_argument("-cased_tokenization", action="store_true", default=None,
                        help="do not lower-case (default: what the model folder says, else "
                        "lower-case)")  # fmt: skip
    parser.add_argument("-mask_cls_sep", action="store_true",
                        help="leave [CLS] and [SEP] out of REDUCE_* pooling and NONE")
    parser.add_argument("-fp16", action="store_true",
                        help="compute in mixed bfloat16 and reply float16 vectors")
    parser.add_argument("-max_request_texts", type=int, default=10000,
                        help="the most texts one request may carry (bigger ones get an error)")
    parser.add_argument("-no_warm_up", action="store_true",
                        help="do not compile every batch shape before accepting requests")
    parser.add_argument("-no_batching", action="store_true",
                        help="run each request alone, never merged with others (as "
                        "bert-serving-server does; for comparisons)")  # fmt: skip
    for name in IGNORED_WITH_VALUE:
        parser.add_argument(f"-{name}", help=argparse.SUPPRESS)
    for name in IGNORED_FLAGS:
        parser.add_argument(f"-{name}", action="store_true", help=argparse.SUPPRESS)
    return parser


def options_from_args(args):
    """A checked :class:`ServeOptions` from parsed arguments."""
    model = args.model or args.model_dir
    if args.model and args.model_dir and args.model != args.model_dir:
        raise ServingError("give the model once: MODEL_DIR_OR_NAME or -model_dir")
    if model is None:
        raise ServingError("-model_dir (or MODEL_DIR_OR_NAME) is required")
    ignored = [f"-{n}" for n in IGNORED_WITH_VALUE if getattr(args, n) is not None]
    ignored += [f"-{n}" for n in IGNORED_FLAGS if getattr(args, n)]
    return ServeOptions(
        model=model, port=args.port, port_out=args.port_out, http_port=args.http_port,
        host=args.host, max_seq_len=args.max_seq_len, pooling_strategy=args.pooling_strategy,
        pooling_layer=list(args.pooling_layer), max_batch_size=args.max_batch_size,
        num_worker=args.num_worker, show_tokens_to_client=args.show_tokens_to_client,
        cased_tokenization=args.cased_tokenization, mask_cls_sep=args.mask_cls_sep,
        fp16=args.fp16, max_request_texts=args.max_request_texts,
        warm_up=not args.no_warm_up, merge_requests=not args.no_batching, ignored=ignored,
    ).check()  # fmt: skip
