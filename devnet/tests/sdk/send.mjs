// Signs and broadcasts a bank send with the official Akash TypeScript SDK (its CosmJS signer over
// CometBFT RPC: status, abci_query, broadcast_tx_sync, tx_search), then prints the result as JSON.
// Usage: node send.mjs <workspace root> <rpc url> <grpc url> <mnemonic> <to address> <amount uact>
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const [root, rpcUrl, grpcUrl, mnemonic, to, amount] = process.argv.slice(2);
const sdkPath = join(root, "sdk-ref/node_modules/@akashnetwork/chain-sdk/dist/esm/index.js");
const { createChainNodeSDK, createStargateClient } = await import(pathToFileURL(sdkPath).href);
const signer = createStargateClient({ baseUrl: rpcUrl, signerMnemonic: mnemonic, defaultGasPrice: "0.025uakt" });
const account = await signer.getAccount();
const sdk = createChainNodeSDK({ query: { baseUrl: grpcUrl }, tx: { signer } });
await sdk.cosmos.bank.v1beta1.send({
  fromAddress: account.address,
  toAddress: to,
  amount: [{ denom: "uact", amount }],
});
const balance = await sdk.cosmos.bank.v1beta1.getBalance({ address: to, denom: "uact" });
console.log(JSON.stringify({ from: account.address, balance: balance.balance.amount }));
