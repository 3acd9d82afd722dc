"""Export recorded computation graphs as Graphviz DOT and render them."""
