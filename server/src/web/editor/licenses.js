// Writes ../assets/vendor/codemirror.LICENSE.txt: the licence of every
// package in the bundle (all MIT), which the bundle's banner points to.
"use strict";
const fs = require("fs");
const path = require("path");

const root = path.join(__dirname, "node_modules");
const packages = [];
for (const entry of fs.readdirSync(root)) {
  if (entry.startsWith(".") || entry === "esbuild" || entry === "@esbuild") continue;
  const dirs = entry.startsWith("@") ? fs.readdirSync(path.join(root, entry)).map((d) => path.join(entry, d)) : [entry];
  packages.push(...dirs);
}
let out = "Licences of the packages bundled into codemirror.js (built from server/src/web/editor/).\n";
for (const name of packages.sort()) {
  const dir = path.join(root, name);
  const meta = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
  const file = fs.readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
  out += `\n==== ${meta.name} ${meta.version} (${meta.license}) ====\n\n`;
  out += file ? fs.readFileSync(path.join(dir, file), "utf8").trim() + "\n" : `${meta.license}\n`;
}
fs.writeFileSync(path.join(__dirname, "../assets/vendor/codemirror.LICENSE.txt"), out);
