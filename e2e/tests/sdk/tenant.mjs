// The official Akash TypeScript SDK (`@akashnetwork/chain-sdk`, installed unmodified under sdk-ref/)
// as the whole tenant, against a devnet and the real provider:
//   1. a client certificate for the account, made with the SDK's certificateManager and published
//      with MsgCreateCertificate;
//   2. the deployment from an SDL (generateManifest: groups, manifest and its version);
//   3. the provider's open bid, queried over gRPC;
//   4. MsgCreateLease on that bid;
//   5. the manifest sent to the provider's gateway with the SDK's provider client
//      (createProviderSDK, gRPC SendManifest, the certificate as the mTLS client identity);
//   6. the lease status read back with the same client (gRPC ServiceStatus) until its services
//      are ready;
//   7. a token (JWT) made with the SDK's JwtTokenManager from the account's wallet, and with it,
//      without a certificate: the lease status over REST (`Authorization: Bearer`, as the SDK's
//      README shows) and the lease's events over the websocket route; a token scoped to
//      `status` only is refused on the events route.
// Every transaction is signed and broadcast by the SDK's CosmJS signer (createStargateClient).
// Progress goes to stderr; one JSON line to stdout at the end.
// Usage: node tenant.mjs <workspace root> <rpc url> <grpc url> <mnemonic> <sdl file> <dseq>
//                        <provider address> <gateway gRPC url> <gateway REST url>
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [root, rpcUrl, grpcUrl, mnemonic, sdlFile, dseqArg, provider, gatewayUrl, restUrl] = process.argv.slice(2);
if (!restUrl) throw new Error("usage: tenant.mjs <root> <rpc> <grpc> <mnemonic> <sdl> <dseq> <provider> <gateway gRPC> <gateway REST>");
const modules = join(root, "sdk-ref/node_modules");
const load = async (path) => import(pathToFileURL(join(modules, path)).href);
const {
  certificateManager,
  createChainNodeSDK,
  createProviderSDK,
  createStargateClient,
  generateManifest,
  generateManifestVersion,
  JwtTokenManager,
} = await load("@akashnetwork/chain-sdk/dist/esm/index.js");
// The wallet the SDK's JWT example uses, and the websocket client its dependencies bring.
const { Secp256k1HdWallet } = await load("@cosmjs/amino/build/index.js");
const { default: WebSocket } = await load("ws/index.js");
const https = await import("node:https");
// The SDK's own YAML dependency.
const yaml = await load("js-yaml/dist/js-yaml.mjs");

const started = Date.now();
const log = (...what) => console.error(`[sdk tenant +${((Date.now() - started) / 1000).toFixed(1)}s]`, ...what);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const errorText = (e) => `${e?.name ?? "Error"}: ${e?.message ?? e}${e?.code !== undefined ? ` (code ${e.code})` : ""}`;
/** Calls `check` every 500 ms until it returns something, or throws after `ms`. */
async function poll(what, ms, check) {
  const deadline = Date.now() + ms;
  let last = "nothing yet";
  for (;;) {
    try {
      const got = await check();
      if (got !== undefined) return got;
    } catch (e) {
      last = errorText(e);
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}; last: ${last}`);
    await sleep(500);
  }
}

const signer = createStargateClient({ baseUrl: rpcUrl, signerMnemonic: mnemonic, defaultGasPrice: "0.025uakt" });
const { address: owner } = await signer.getAccount();
const chain = createChainNodeSDK({ query: { baseUrl: grpcUrl }, tx: { signer } });
const dseq = BigInt(dseqArg);
log(`tenant ${owner}, deployment ${dseq}, provider ${provider} at ${gatewayUrl}`);

// 1. The tenant's certificate, published on chain.
const pem = await certificateManager.generatePEM(owner);
const info = await certificateManager.parsePem(pem.cert);
const encoder = new TextEncoder();
await chain.akash.cert.v1.createCertificate({
  owner,
  cert: encoder.encode(pem.cert),
  pubkey: encoder.encode(pem.publicKey),
});
const serial = BigInt(`0x${info.hSerial}`).toString();
const published = await chain.akash.cert.v1.getCertificates({ filter: { owner, serial, state: "" } });
if (published.certificates.length !== 1) throw new Error(`certificate ${serial} is not on chain: ${JSON.stringify(published)}`);
log(`certificate ${serial} published`);

// 2. The deployment.
const generated = generateManifest(yaml.load(readFileSync(sdlFile, "utf8")));
if (!generated.ok) throw new Error(`the SDK refused ${sdlFile}: ${JSON.stringify(generated.value)}`);
const { groups: manifest, groupSpecs } = generated.value;
const version = await generateManifestVersion(manifest);
await chain.akash.deployment.v1beta4.createDeployment({
  id: { owner, dseq },
  groups: groupSpecs,
  hash: version,
  deposit: { amount: { denom: "uact", amount: "5000000" }, sources: [1] }, // Source.balance
});
log(`deployment created, version ${Buffer.from(version).toString("hex")}`);

// 3. The provider's bid.
const bid = await poll("the provider's open bid", 60_000, async () => {
  const { bids } = await chain.akash.market.v1beta5.getBids({ filters: { owner, dseq, provider } });
  return bids.map((b) => b.bid).find((b) => b && b.state === 1); // Bid_State.open
});
log(`bid ${JSON.stringify({ ...bid.id, dseq: String(bid.id.dseq) })} at ${bid.price.amount}${bid.price.denom}`);

// 4. The lease.
await chain.akash.market.v1beta5.createLease({ bidId: bid.id });
const leaseId = {
  owner,
  dseq,
  gseq: bid.id.gseq,
  oseq: bid.id.oseq,
  provider,
  bseq: bid.id.bseq,
};
const { leases } = await chain.akash.market.v1beta5.getLeases({ filters: { owner, dseq, provider, state: "" } });
log(`lease created, state ${leases[0]?.lease?.state}`);

// 5. The manifest, to the provider's gateway over gRPC with the certificate as the client identity.
// The provider learns of the lease from the chain a moment later; until then it answers that it holds
// no such lease, and the tenant tries again (as the Akash console does).
const gateway = createProviderSDK({
  baseUrl: gatewayUrl,
  authentication: { type: "mtls", cert: pem.cert, key: pem.privateKey },
  transportOptions: { defaultTimeoutMs: 30_000 },
});
const refusals = [];
await poll("the provider to accept the manifest", 90_000, async () => {
  try {
    await gateway.akash.provider.lease.v1.sendManifest({ leaseId, manifest });
    return true;
  } catch (e) {
    const text = errorText(e);
    if (refusals.at(-1) !== text) {
      refusals.push(text);
      log(`SendManifest: ${text}`);
    }
    throw e;
  }
});
log("manifest accepted");

// 6. The lease status, until every service is ready.
let polls = 0;
const status = await poll("the lease's services ready", 150_000, async () => {
  polls += 1;
  const response = await gateway.akash.provider.lease.v1.serviceStatus({ leaseId, services: [] });
  const services = response.services;
  if (polls % 10 === 1) log(`ServiceStatus: ${JSON.stringify(services.map((s) => [s.name, s.status?.readyReplicas, s.status?.total]))}`);
  if (services.length > 0 && services.every((s) => s.status && s.status.readyReplicas >= s.status.total && s.status.total > 0)) {
    return response;
  }
  return undefined;
});
log("services ready");

// 7. Without a certificate: a token from the account's wallet (ES256KADR36, the SDK's default).
const wallet = await Secp256k1HdWallet.fromMnemonic(mnemonic, { prefix: "akash" });
const jwt = new JwtTokenManager(wallet);
const now = Math.floor(Date.now() / 1000);
const token = await jwt.generateToken({ version: "v1", iss: owner, iat: now, nbf: now, exp: now + 600, leases: { access: "full" } });
const statusOnly = await jwt.generateToken({
  version: "v1", iss: owner, iat: now, nbf: now, exp: now + 600, leases: { access: "scoped", scope: ["status"] },
});
// The provider's certificate is its own (self-signed, on chain): not one a CA vouches for.
const tls = { rejectUnauthorized: false };
const leasePath = `/lease/${dseq}/${bid.id.gseq}/${bid.id.oseq}`;
function restGet(path, bearer) {
  return new Promise((resolve, reject) => {
    const request = https.get(`${restUrl}${path}`, { ...tls, headers: { Authorization: `Bearer ${bearer}` } }, (response) => {
      let body = "";
      response.on("data", (chunk) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode, body }));
    });
    request.on("error", reject);
  });
}
const restStatus = await restGet(`${leasePath}/status`, token);
log(`REST lease status with a JWT: ${restStatus.status}`);
const restScoped = await restGet(`${leasePath}/status`, statusOnly);
function events(bearer) {
  return new Promise((resolve) => {
    const socket = new WebSocket(`${restUrl.replace("https:", "wss:")}${leasePath}/kubeevents`, {
      ...tls,
      headers: { Authorization: `Bearer ${bearer}` },
    });
    const got = [];
    socket.on("message", (data) => got.push(JSON.parse(data.toString())));
    socket.on("unexpected-response", (_, response) => resolve({ refused: response.statusCode, events: got }));
    socket.on("close", (code) => resolve({ close: code, events: got }));
    socket.on("error", (e) => resolve({ error: String(e), events: got }));
  });
}
const eventsRead = await events(token);
log(`events with a JWT: ${eventsRead.events.length}, close ${eventsRead.close}`);
const eventsRefused = await events(statusOnly);
log(`events with a status-only JWT: refused ${eventsRefused.refused}`);

console.log(
  JSON.stringify({
    owner,
    jwt: {
      algorithm: JSON.parse(Buffer.from(token.split(".")[0], "base64url").toString()).alg,
      restStatus: restStatus.status,
      restBody: restStatus.body,
      restScopedStatus: restScoped.status,
      events: eventsRead,
      eventsScoped: { refused: eventsRefused.refused, close: eventsRefused.close, events: eventsRefused.events.length },
    },
    dseq: dseq.toString(),
    serial,
    version: Buffer.from(version).toString("hex"),
    bid: { gseq: bid.id.gseq, oseq: bid.id.oseq, bseq: bid.id.bseq, price: bid.price.amount, denom: bid.price.denom },
    refusals,
    services: status.services.map((s) => ({
      name: s.name,
      available: s.status.available,
      total: s.status.total,
      readyReplicas: s.status.readyReplicas,
      uris: s.status.uris,
      ports: s.ports.map((p) => ({ port: p.port, externalPort: p.externalPort, proto: p.proto, name: p.name })),
    })),
  }),
);
