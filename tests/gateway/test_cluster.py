import lstest


lstest.main(globals())
