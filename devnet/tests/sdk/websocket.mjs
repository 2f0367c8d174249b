// CosmJS' Comet38Client (@cosmjs/tendermint-rpc, a dependency of the official Akash SDK installed
// under sdk-ref/) over a devnet's websocket: status over the socket, a NewBlock event from
// subscribeNewBlock(), and the Tx event of a transaction it broadcasts. Prints one JSON line.
// Usage: node websocket.mjs <workspace root> <ws url> <signed tx, base64>
import { createRequire } from "node:module";
import { join } from "node:path";

const [root, wsUrl, txBase64] = process.argv.slice(2);
const require = createRequire(join(root, "sdk-ref/package.json"));
const { Comet38Client } = require("@cosmjs/tendermint-rpc");

function first(stream, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no event within " + timeoutMs + " ms")), timeoutMs);
    const listener = {
      next: (value) => {
        clearTimeout(timer);
        stream.removeListener(listener);
        resolve(value);
      },
      error: (e) => {
        clearTimeout(timer);
        reject(e);
      },
      complete: () => {},
    };
    stream.addListener(listener);
  });
}

const client = await Comet38Client.connect(wsUrl);
const status = await client.status();
const block = await first(client.subscribeNewBlock());
const header = await first(client.subscribeNewBlockHeader());
const txEvent = first(client.subscribeTx());
const broadcast = await client.broadcastTxSync({ tx: Buffer.from(txBase64, "base64") });
const tx = await txEvent;
client.disconnect();
console.log(
  JSON.stringify({
    network: status.nodeInfo.network,
    blockHeight: block.header.height,
    blockChainId: block.header.chainId,
    headerHeight: header.height,
    broadcastCode: broadcast.code,
    broadcastHash: Buffer.from(broadcast.hash).toString("hex").toUpperCase(),
    txHash: Buffer.from(tx.hash).toString("hex").toUpperCase(),
    txHeight: tx.height,
    txCode: tx.result.code,
    txEvents: tx.result.events.map((e) => e.type),
  }),
);
process.exit(0);
