module goro-bench-mutex

go 1.19
