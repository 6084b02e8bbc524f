// Keeps dml_test_support non-empty before any shared helper exists.
