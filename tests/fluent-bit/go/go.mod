module weir.invalid/fluentbitgo

go 1.24
