// Empty: lets main.go declare the bodyless functions it links to the runtime
// (cputicks, nanotime) with go:linkname.
