// Compiled only to produce the tests' precompiled header (see CMakeLists.txt).
