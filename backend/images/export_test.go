package images

// WithPortableResolver makes the store unpack with the O_NOFOLLOW component walk darwin uses, so
// Linux tests cover it too.
func WithPortableResolver() Option { return func(s *Store) { s.portable = true } }
