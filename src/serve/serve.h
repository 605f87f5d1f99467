/* `parlor serve` (the chat server) and `parlor token` (development tokens). */
#ifndef PARLOR_SERVE_H
#define PARLOR_SERVE_H

int serve_main(int argc, char **argv);
int token_main(int argc, char **argv);
int migrate_main(int argc, char **argv);

#endif
