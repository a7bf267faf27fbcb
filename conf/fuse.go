package conf

// FUSE configures the FUSE front-end.
type FUSE struct {
	// AttrTimeout and EntryTimeout are the kernel's attribute and name caches.
	AttrTimeout  Duration `yaml:"attr_timeout"`
	EntryTimeout Duration `yaml:"entry_timeout"`
}

// DefaultFUSE is the FUSE front-end's default configuration.
func DefaultFUSE() FUSE {
	return FUSE{AttrTimeout: Duration(60e9), EntryTimeout: Duration(60e9)}
}

func (f FUSE) validate() []error { return nil }
