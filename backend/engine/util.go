package engine

import "go.uber.org/zap"

func zapID(id string) zap.Field        { return zap.String("container", ShortID(id)) }
func zapErr(err error) zap.Field       { return zap.Error(err) }
func zapStr(k, v string) zap.Field     { return zap.String(k, v) }
func zapInt(k string, v int) zap.Field { return zap.Int(k, v) }
