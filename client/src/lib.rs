//! Client library for ferrocache and memcached clusters.
