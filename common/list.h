/*
 * Intrusive doubly-linked lists whose elements name their own link fields (a task is on its
 * owner's list through next_owned/prev_owned, an attempt on the orphan list through
 * onext/oprev): `head` is the list's first-element pointer, `e` the element.
 */
#ifndef SCATTER_COMMON_LIST_H
#define SCATTER_COMMON_LIST_H

#include <stddef.h>

/* Puts e first. */
#define LIST_PUSH(head, e, prev, next)                                                              \
    do {                                                                                            \
        (e)->prev = NULL;                                                                           \
        (e)->next = (head);                                                                         \
        if (head)                                                                                   \
            (head)->prev = (e);                                                                     \
        (head) = (e);                                                                               \
    } while (0)

/* Takes e out and clears its links: nothing reached through a removed element's links. */
#define LIST_UNLINK(head, e, prev, next)                                                            \
    do {                                                                                            \
        if ((e)->prev)                                                                              \
            (e)->prev->next = (e)->next;                                                            \
        else                                                                                        \
            (head) = (e)->next;                                                                     \
        if ((e)->next)                                                                              \
            (e)->next->prev = (e)->prev;                                                            \
        (e)->prev = (e)->next = NULL;                                                               \
    } while (0)

#endif
