module netbench/go-echo

go 1.19
