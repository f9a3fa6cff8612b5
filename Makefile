# hlauth: PGXS build, tests, demo and benchmarks.
#   make            build the extension (warnings are errors)
#   make install    install into the PostgreSQL found by PG_CONFIG
#   make test       install what is missing, build, install, run every suite (test/run.sh)
#   make demo       install what is missing, build, install, start a throwaway cluster, walk through
#   make bench      pgbench: hlauth next to its baselines (bench/run.sh)
#   make fuzz       a longer libFuzzer run of the core parsers (test/fuzz)

EXTENSION = hlauth
EXTVERSION = 0.2.0
MODULE_big = hlauth
OBJS = \
	src/core/scope.o \
	src/core/apikey.o \
	src/core/crypto.o \
	src/hlauth.o \
	src/scopes.o \
	src/tenants.o \
	src/context.o \
	src/protect.o \
	src/guard.o \
	src/cascade.o \
	src/secret.o \
	src/rbac.o \
	src/apikey.o \
	src/audit.o \
	src/authfail.o

# Install scripts. hlauth--0.1.0.sql is the first version, frozen. Each later version's
# objects live in src/sql/<version>/*.sql (applied in name order): the upgrade script is
# those pieces, and the full script of the version is the first version plus every upgrade.
UPGRADE_0_2_0 = $(sort $(wildcard $(srcdir)/src/sql/0.2.0/*.sql))
DATA = hlauth--0.1.0.sql
DATA_built = hlauth--0.1.0--0.2.0.sql hlauth--0.2.0.sql
PGFILEDESC = "hlauth - tenant isolation and authorization"

# pg_regress suites: sql/<name>.sql against expected/<name>.out
REGRESS = $(sort $(basename $(notdir $(wildcard $(srcdir)/sql/*.sql))))
REGRESS_OPTS = --load-extension=hlauth

# Isolation specs: test/isolation/specs/<name>.spec against test/isolation/expected/<name>.out
ISOLATION = $(sort $(basename $(notdir $(wildcard $(srcdir)/test/isolation/specs/*.spec))))
ISOLATION_OPTS = --inputdir=$(srcdir)/test/isolation --outputdir=output_iso --load-extension=hlauth

PG_CONFIG ?= pg_config

# The project's own C: every warning is an error. Unused fcinfo in V1 functions and
# PostgreSQL's partial initialisers are the two -Wextra warnings PG headers cannot avoid.
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
PG_CPPFLAGS = -I$(srcdir)/src -I$(srcdir)/src/core
SHLIB_LINK = -lcrypto -lz

EXTRA_CLEAN = output_iso results regression.diffs regression.out

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Both begin with src/sql/schema_check.sql: schema hlauth must be superusers' alone.
SCHEMA_CHECK = $(srcdir)/src/sql/schema_check.sql

hlauth--0.1.0--0.2.0.sql: $(SCHEMA_CHECK) $(UPGRADE_0_2_0)
	{ printf '%s\n' '\echo Use "ALTER EXTENSION hlauth UPDATE TO '"'"'0.2.0'"'"'" to load this file. \quit'; \
	  for f in $^; do echo "-- ---- $$(basename $$f)"; cat "$$f"; done; } > $@

hlauth--0.2.0.sql: hlauth--0.1.0.sql $(SCHEMA_CHECK) $(UPGRADE_0_2_0)
	{ printf '%s\n' '\echo Use "CREATE EXTENSION hlauth" to load this file. \quit'; \
	  echo "-- ---- $$(basename $(SCHEMA_CHECK))"; cat $(SCHEMA_CHECK); \
	  echo "-- ---- $<"; cat $<; for f in $(UPGRADE_0_2_0); do echo "-- ---- $$(basename $$f)"; cat "$$f"; done; } > $@

.PHONY: test demo bench fuzz unit
test:
	bash test/run.sh

demo:
	bash examples/demo.sh

bench:
	bash bench/run.sh

unit:
	$(MAKE) -C test/unit run

fuzz:
	$(MAKE) -C test/fuzz run FUZZ_SECONDS=$${FUZZ_SECONDS:-300}
