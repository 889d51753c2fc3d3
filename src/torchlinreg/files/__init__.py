"""Tables on disk read in row blocks (CSV, Parquet, .npy), atomic writes, safetensors files."""
