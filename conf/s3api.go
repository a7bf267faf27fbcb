package conf

// S3API configures the S3-compatible front-end.
type S3API struct {
	// Enabled turns the S3 listener on in `strata local` and workers.
	Enabled bool `yaml:"enabled"`
	// Listen is the S3 API address.
	Listen string `yaml:"listen"`
}

// DefaultS3API is the S3 front-end's default configuration.
func DefaultS3API() S3API {
	return S3API{Enabled: true, Listen: "127.0.0.1:7480"}
}

func (s S3API) validate() []error { return nil }
