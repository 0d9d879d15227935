module goro-bench-chan

go 1.19
