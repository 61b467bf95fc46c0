"""Deep Compression algorithms: pruning, weight sharing, sparse storage, Huffman coding, the compressed file (torch + numpy only)."""
