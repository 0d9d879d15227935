module goro-bench-preempt

go 1.19
