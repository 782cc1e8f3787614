// Webpack config of the cleanroom-lab JupyterLab application (see index.js).
// Mirrors jupyterlab's examples/app config, with webpack instead of rspack.
const path = require("path");
const webpack = require("webpack");
const miniSVGDataURI = require("mini-svg-data-uri");
const MiniCssExtractPlugin = require("mini-css-extract-plugin");
const { Build } = require("@jupyterlab/builder");

const APP_PLUGINS = [
  "@jupyterlab/application-extension",
  "@jupyterlab/apputils-extension",
  "@jupyterlab/codemirror-extension",
  "@jupyterlab/completer-extension",
  "@jupyterlab/console-extension",
  "@jupyterlab/docmanager-extension",
  "@jupyterlab/documentsearch-extension",
  "@jupyterlab/filebrowser-extension",
  "@jupyterlab/fileeditor-extension",
  "@jupyterlab/launcher-extension",
  "@jupyterlab/mainmenu-extension",
  "@jupyterlab/markdownviewer-extension",
  "@jupyterlab/markedparser-extension",
  "@jupyterlab/notebook-extension",
  "@jupyterlab/rendermime-extension",
  "@jupyterlab/running-extension",
  "@jupyterlab/shortcuts-extension",
  "@jupyterlab/statusbar-extension",
  "@jupyterlab/theme-dark-extension",
  "@jupyterlab/theme-light-extension",
  "@jupyterlab/tooltip-extension",
  "@jupyterlab/translation-extension",
  "@jupyterlab/ui-components-extension",
  "@jupyterlab/javascript-extension",
  "@jupyterlab/json-extension",
  "@cleanroom-lab/jupyterlab",
];

const out = path.resolve(__dirname, "build");

// Copies settings schemas and theme bundles to build/, and writes build/style.js.
const assetConfig = Build.ensureAssets({ packageNames: APP_PLUGINS, output: out });

module.exports = [
  {
    mode: "production",
    entry: { bundle: path.resolve(__dirname, "index.js") },
    context: __dirname,
    output: { path: out, filename: "[name].js", chunkFilename: "[name].[contenthash:8].js" },
    bail: true,
    devtool: false,
    cache: { type: "filesystem", cacheDirectory: path.resolve(__dirname, "../../node_modules/.cache/cleanroom-lab-app") },
    performance: { hints: false },
    resolve: { fallback: { path: require.resolve("path-browserify"), process: false, fs: false } },
    module: {
      rules: [
        { test: /\.css$/, exclude: /\.raw\.css$/, use: [MiniCssExtractPlugin.loader, "css-loader"] },
        { test: /\.raw\.css$/, type: "asset/source" },
        { test: /\.html$/, type: "asset/resource" },
        { test: /\.md$/, type: "asset/source" },
        { test: /\.(jpg|png|gif)$/, type: "asset/resource" },
        { test: /\.js.map$/, type: "asset/resource" },
        { test: /\.(woff2?|ttf)(\?v=\d+\.\d+\.\d+)?$/, type: "asset" },
        { test: /\.eot(\?v=\d+\.\d+\.\d+)?$/, type: "asset/resource" },
        {
          test: /\.svg(\?v=\d+\.\d+\.\d+)?$/,
          issuer: /\.css$/,
          type: "asset/inline",
          generator: { dataUrl: (content) => miniSVGDataURI(content.toString()) },
        },
        { test: /\.svg(\?v=\d+\.\d+\.\d+)?$/, issuer: /\.js$/, type: "asset/source" },
        { test: /\.m?js$/, resolve: { fullySpecified: false } },
      ],
    },
    plugins: [
      new webpack.DefinePlugin({ process: { cwd: () => "/", env: {} } }),
      new MiniCssExtractPlugin({ filename: "[name].[contenthash:8].css", chunkFilename: "[id].[contenthash:8].css" }),
    ],
  },
]
  .concat(assetConfig)
  .map((c) => ({ ...c, stats: "errors-warnings" }));
