// memjs (Node.js, binary protocol + SASL PLAIN) against a SASL server.
//
// usage: node memjs_sasl.js PORT USER PASSWORD ok|fail
// memjs is looked up in $MEMJS_DIR, else target/interop/node/node_modules
// (where tests/interop/auth-deps.sh installs it).
// ok:   set/get/increment/delete work after authentication.
// fail: every operation is refused.
// Prints PASS on success; exits non-zero with a reason otherwise.
const path = require("path");
const memjs = require(
  process.env.MEMJS_DIR ||
    path.join(__dirname, "..", "..", "target", "interop", "node", "node_modules", "memjs"),
);

const [port, username, password, expect] = process.argv.slice(2);
const client = memjs.Client.create(`127.0.0.1:${port}`, {
  username,
  password,
  retries: 0,
  timeout: 5,
  conntimeout: 5,
  logger: { log: () => {} },
});

function fail(msg) {
  console.error(msg);
  client.close();
  process.exit(1);
}

async function main() {
  if (expect === "ok") {
    await client.set("js:key", "value", {});
    const { value } = await client.get("js:key");
    if (!value || value.toString() !== "value") fail(`get returned ${value}`);
    await client.set("js:n", "41", {});
    const { value: n } = await client.increment("js:n", 1, {});
    if (n !== 42) fail(`increment returned ${n}`);
    if (!(await client.delete("js:key"))) fail("delete failed");
  } else {
    let refused = 0;
    for (const op of [() => client.set("js:intruder", "x", {}), () => client.get("js:key")]) {
      try {
        await op();
      } catch (e) {
        refused++;
        console.log(`refused: ${e}`);
      }
    }
    if (refused !== 2) fail(`only ${refused} of 2 operations were refused`);
  }
  client.close();
  console.log("PASS");
  process.exit(0);
}

main().catch((e) => fail(`error: ${e && e.message}`));
