"""The files of an exported encoder folder, shared by the ONNX and the static encoders."""

FOLDER = "encoder"
TOKENIZER_FILE = "tokenizer.json"
INFO_FILE = "encoder.json"
MAX_LENGTH = 256  # tokens, as embedding_cache.compute_torch truncates (a static encoder: pieces, no [CLS]/[SEP])
