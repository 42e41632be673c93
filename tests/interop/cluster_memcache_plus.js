// Auto discovery through memcache-plus (npm memcache-plus@0.3.1).
// Usage: node cluster_memcache_plus.js HOST:PORT EXPECTED_NODES
// Discovers the cluster from one node, checks it found every node, then
// stores and reads keys through the discovered nodes. Exit 0 on success.
'use strict';

let MemcachePlus;
try {
    MemcachePlus = require('memcache-plus');
} catch (e) {
    console.error('memcache-plus is not installed: run tests/interop/cluster-deps.sh');
    process.exit(2);
}

const [endpoint, expected] = process.argv.slice(2);
const want = Number(expected);

async function main() {
    const client = new MemcachePlus({ hosts: [endpoint], autodiscover: true });
    await client.set('mp-probe', 'x');
    const hosts = client.hosts.slice().sort();
    if (hosts.length !== want) {
        throw new Error(`discovered ${hosts.length} nodes, expected ${want}: ${hosts}`);
    }
    for (let i = 0; i < 60; i++) {
        await client.set(`mp-key-${i}`, `value-${i}`);
    }
    for (let i = 0; i < 60; i++) {
        const v = await client.get(`mp-key-${i}`);
        if (v !== `value-${i}`) {
            throw new Error(`mp-key-${i}: got ${v}`);
        }
    }
    console.log(`DISCOVERED ${hosts.join(' ')}`);
    client.disconnect();
}

main().then(() => process.exit(0), (e) => {
    console.error(e && e.stack || e);
    process.exit(1);
});
