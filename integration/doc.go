// Package integration tests xascript end to end on real Linux guests: memory
// captured from Debian kernels booted under QEMU by testdata/build-guest.sh,
// compared with the ground truth each guest printed about itself
// (truth.json: /proc/modules, CR3, symbol addresses, the banner).
//
// By default the tests use the images committed under testdata/images; the
// heavy suite (make test-guests) points XASCRIPT_IMAGES and XASCRIPT_KERNELS
// at freshly built ones.
package integration
