// The official Akash TypeScript SDK as a tenant: reads an SDL file, builds the deployment's groups
// and manifest version with the SDK's SDL class, sends MsgCreateDeployment (with a deposit) signed by
// its CosmJS signer, then reads the resulting orders and deployment over gRPC. Prints one JSON line.
// Usage: node deploy.mjs <workspace root> <rpc url> <grpc url> <mnemonic> <sdl file> <dseq>
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const [root, rpcUrl, grpcUrl, mnemonic, sdlFile, dseq] = process.argv.slice(2);
const sdkPath = join(root, "sdk-ref/node_modules/@akashnetwork/chain-sdk/dist/esm/index.js");
const { createChainNodeSDK, createStargateClient, SDL } = await import(pathToFileURL(sdkPath).href);

const sdl = SDL.fromString(readFileSync(sdlFile, "utf8"), "beta3", "mainnet");
const groups = sdl.groups();
const version = await sdl.manifestVersion();

const signer = createStargateClient({ baseUrl: rpcUrl, signerMnemonic: mnemonic, defaultGasPrice: "0.025uakt" });
const account = await signer.getAccount();
const sdk = createChainNodeSDK({ query: { baseUrl: grpcUrl }, tx: { signer } });
const owner = account.address;
await sdk.akash.deployment.v1beta4.createDeployment({
  id: { owner, dseq: BigInt(dseq) },
  groups,
  hash: version,
  deposit: { amount: { denom: "uact", amount: "5000000" }, sources: [1] }, // Source.balance
});

const text = (v) => (v instanceof Uint8Array ? new TextDecoder().decode(v) : String(v));
const orders = await sdk.akash.market.v1beta5.getOrders({ filters: { owner, dseq: BigInt(dseq) } });
const deployment = await sdk.akash.deployment.v1beta4.getDeployment({ id: { owner, dseq: BigInt(dseq) } });
console.log(
  JSON.stringify({
    owner,
    version: Buffer.from(version).toString("hex"),
    deployment: {
      state: deployment.deployment.state,
      hash: Buffer.from(deployment.deployment.hash).toString("hex"),
      escrowBalance: deployment.escrowAccount?.state?.funds?.map((f) => ({ denom: f.denom, amount: f.amount })) ?? null,
    },
    orders: orders.orders.map((o) => ({
      id: { dseq: o.id.dseq.toString(), gseq: o.id.gseq, oseq: o.id.oseq },
      state: o.state,
      name: o.spec.name,
      attributes: o.spec.requirements.attributes.map((a) => ({ key: a.key, value: a.value })),
      resources: o.spec.resources.map((r) => ({
        count: r.count,
        price: { denom: r.price.denom, amount: r.price.amount },
        cpu: text(r.resource.cpu.units.val),
        memory: text(r.resource.memory.quantity.val),
        storage: r.resource.storage.map((s) => ({ name: s.name, size: text(s.quantity.val) })),
        endpoints: r.resource.endpoints.length,
      })),
    })),
  }),
);
