<?php
// PHP session storage over SASL with php-memcached: one request of a web
// application, as a separate process. The server, user and password come
// from the php.ini settings given with -d (see tests/sasl_interop.rs).
//
// usage: php -d session.save_handler=memcached -d session.save_path=127.0.0.1:PORT
//            -d memcached.sess_binary_protocol=1
//            -d memcached.sess_sasl_username=USER -d memcached.sess_sasl_password=PW
//            php_session.php SESSION_ID
// Prints "counter=N" after incrementing the session counter, or
// "START FAILED: <warning>" and exits 2.

$warnings = [];
set_error_handler(function ($no, $str) use (&$warnings) {
    $warnings[] = $str;
    return true;
});
session_id($argv[1]);
if (!session_start()) {
    echo "START FAILED: ", implode(" | ", $warnings), "\n";
    exit(2);
}
$_SESSION['counter'] = ($_SESSION['counter'] ?? 0) + 1;
$n = $_SESSION['counter'];
if (!session_write_close()) {
    echo "WRITE FAILED: ", implode(" | ", $warnings), "\n";
    exit(3);
}
echo "counter=$n\n";
if ($warnings) {
    echo "warnings: ", implode(" | ", $warnings), "\n";
}
