// Queries a devnet with the official Akash TypeScript SDK (@akashnetwork/chain-sdk, installed under
// sdk-ref/ at the workspace root) over its gRPC port, and prints what it read as one JSON line.
// Usage: node query.mjs <workspace root> <grpc url> <address>
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const [root, baseUrl, address] = process.argv.slice(2);
const sdkPath = join(root, "sdk-ref/node_modules/@akashnetwork/chain-sdk/dist/esm/index.js");
const { createChainNodeSDK } = await import(pathToFileURL(sdkPath).href);
const sdk = createChainNodeSDK({ query: { baseUrl } });
const balance = await sdk.cosmos.bank.v1beta1.getBalance({ address, denom: "uact" });
const orders = await sdk.akash.market.v1beta5.getOrders({ filters: { owner: address, state: "open" } });
const deployments = await sdk.akash.deployment.v1beta4.getDeployments({ filters: { owner: address } });
console.log(
  JSON.stringify({
    balance: balance.balance.amount,
    orders: orders.orders.map((o) => ({ dseq: o.id.dseq.toString(), gseq: o.id.gseq, name: o.spec.name })),
    deployments: deployments.deployments.map((d) => ({
      dseq: d.deployment.id.dseq.toString(),
      hash: Buffer.from(d.deployment.hash).toString("hex"),
      groups: d.groups.length,
    })),
  }),
);
