// Starts `catnet lsp` (the language server of catnet/editor/server.py) for .cat files.
// The command is the setting `catnet.server.path` (default: `catnet` on the PATH,
// e.g. the one in the project's .venv/bin when VS Code is started from an
// activated environment), with the arguments in `catnet.server.args`.
const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration("catnet");
  const command = config.get("server.path", "catnet");
  const args = config.get("server.args", ["lsp"]);
  const server = { command, args, transport: TransportKind.stdio };
  client = new LanguageClient(
    "catnet",
    "catnet language server",
    { run: server, debug: server },
    { documentSelector: [{ scheme: "file", language: "catnet" }] }
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
