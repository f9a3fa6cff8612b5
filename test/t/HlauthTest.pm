# test/t/HlauthTest.pm: helpers shared by hlauth's Perl TAP tests (prove runs with -I test/t).
package HlauthTest;

use strict;
use warnings;

use Exporter 'import';
our @EXPORT = qw(hl_random_hex hl_setup_secret);

# $n random bytes from /dev/urandom, as lower-case hex.
sub hl_random_hex
{
	my ($n) = @_;
	open(my $rnd, '<:raw', '/dev/urandom') or die "/dev/urandom: $!";
	read($rnd, my $bytes, $n) == $n or die "/dev/urandom: short read";
	close $rnd;
	return unpack('H*', $bytes);
}

# The server secret of a test cluster: a file beside (not inside) the node's data directory,
# mode 600, holding versions 1 and 2 of random 32-byte master keys, named by
# hlauth.secret_file in postgresql.conf. Call before the node starts. Returns the path and a
# hash { version => hex }.
sub hl_setup_secret
{
	my ($node) = @_;
	my $path = $node->basedir . '/hlauth_secret';
	my %hex = map { $_ => hl_random_hex(32) } (1, 2);
	my $umask = umask 077;
	open(my $fh, '>', $path) or die "$path: $!";
	print $fh "# hlauth test secret\n", map { "$_ $hex{$_}\n" } sort keys %hex;
	close $fh or die "$path: $!";
	umask $umask;
	chmod 0600, $path or die "$path: $!";
	$node->append_conf('postgresql.conf', "hlauth.secret_file = '$path'");
	return ($path, \%hex);
}

1;
