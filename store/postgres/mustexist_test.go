package postgres

import (
	"context"
	"errors"
	"testing"
)

// With MustExist, a database without the schema is refused and left
// untouched; once initialised, it opens.
func TestMustExist(t *testing.T) {
	ctx := context.Background()
	dsn := freshDB(t)
	if s, err := Open(ctx, dsn, Options{MustExist: true}); !errors.Is(err, ErrNoSchema) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open(MustExist) of an empty database: %v, want ErrNoSchema", err)
	}
	// Nothing was created: a second MustExist open is refused too.
	if _, err := Open(ctx, dsn, Options{MustExist: true}); !errors.Is(err, ErrNoSchema) {
		t.Fatalf("second Open(MustExist): %v, want ErrNoSchema", err)
	}
	openTest(t, dsn, Options{}).Close()
	openTest(t, dsn, Options{MustExist: true})
}
